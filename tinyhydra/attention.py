"""The three attention ops in one namespace, for ``from tinyhydra.attention import ...``.

Each lives in its own module: :mod:`tinyhydra.softmax_attention`,
:mod:`tinyhydra.linear_attention` and :mod:`tinyhydra.hydra`; the masks they share are in
:mod:`tinyhydra.masking`. Nothing is defined here.
"""
from .hydra import FusedHydraAttention, hydra_attention
from .linear_attention import (
    LINEAR_ATTENTION_CHUNK,
    LINEAR_ATTENTION_EPS,
    FusedLinearAttention,
    linear_attention,
)
from .masking import as_bool_mask, causal_mask, reverse_cumsum
from .softmax_attention import SoftmaxAttention, softmax_attention

__all__ = [
    "softmax_attention", "linear_attention", "hydra_attention", "SoftmaxAttention",
    "FusedLinearAttention", "FusedHydraAttention", "LINEAR_ATTENTION_EPS", "LINEAR_ATTENTION_CHUNK",
    "as_bool_mask", "reverse_cumsum", "causal_mask",
]
