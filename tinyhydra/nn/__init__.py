"""``tinyhydra.nn``: modules with parameters, built on the engine and the attention ops,
as ``torch.nn``; every layer is importable from here.

Read in this order:

1. :mod:`.module`: ``Parameter``, ``Module`` (parameters found by walking attributes,
   train/eval, state dicts) and ``ModuleList``;
2. :mod:`.layers`: Linear, Embedding, LayerNorm, Dropout, FeedForward, DepthwiseConv1d;
3. :mod:`.attention_layers`: the attention kinds as layers (projections around an op of
   :mod:`tinyhydra.attention`), the registry ``ATTENTION_KINDS`` that names them and
   ``register_attention``, the way a new kind gets in;
4. :mod:`.block`: ``TransformerBlock``, the encoder layer SASRec and BERT4Rec share;
5. :mod:`.optim`, :mod:`.lr_schedule` and :mod:`.flat`: SGD, Adam, the weight average
   (ExponentialMovingAverage), the cosine learning-rate schedule and the flat buffer that lets
   an optimizer update every parameter in one array operation.
"""
from __future__ import annotations

from .attention_layers import (
    ATTENTION_KINDS,
    AttentionKind,
    DecayedHydraAttention,
    HydraAttention,
    LinearAttention,
    MultiHeadSoftmaxAttention,
    ProjectedAttention,
    half_life_decays,
    make_attention,
    register_attention,
)
from .block import TransformerBlock
from .layers import DepthwiseConv1d, Dropout, Embedding, FeedForward, LayerNorm, Linear
from .module import Module, ModuleList, Parameter

__all__ = [
    "Parameter", "Module", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout",
    "FeedForward", "DepthwiseConv1d", "ProjectedAttention", "MultiHeadSoftmaxAttention",
    "HydraAttention", "DecayedHydraAttention", "LinearAttention", "AttentionKind", "ATTENTION_KINDS",
    "register_attention", "make_attention", "half_life_decays", "TransformerBlock",
]

