"""The public functional API: ``from tinyhydra import functional as F``.

Thin wrappers that check their arguments and call one Function each; the maths
lives in the Function docstrings (ops, softmax, norm, embedding, softmax_attention,
linear_attention, hydra).
"""
from __future__ import annotations

from .attention.conv import depthwise_conv1d
from .attention.decayed_hydra import decayed_hydra_attention
from .attention.hydra import hydra_attention
from .attention.linear_attention import linear_attention
from .attention.softmax_attention import softmax_attention
from .engine import ops
from .engine.embedding import Embedding, as_ids, check_ids
from .engine.norm import LayerNorm
from .engine.softmax import BinaryCrossEntropyWithLogits, CrossEntropy, LogSoftmax, Softmax
from .engine.tensor import Tensor, raw

__all__ = [
    "embedding", "layer_norm", "softmax", "log_softmax", "relu", "gelu", "sigmoid", "dropout",
    "linear", "masked_fill", "cross_entropy", "binary_cross_entropy_with_logits",
    "softmax_attention", "hydra_attention", "decayed_hydra_attention", "linear_attention",
    "depthwise_conv1d",
]


def embedding(ids, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, D) for integer ``ids`` (...) -> (..., D)."""
    ids = as_ids(ids)
    check_ids(ids, weight.shape[0], name="embedding")
    return Embedding.apply(weight, ids=ids)


def layer_norm(x: Tensor, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last axis, then scale by ``weight`` and shift by ``bias`` (D,)."""
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != x.shape[-1:]:
            raise ValueError(
                f"layer_norm: {name} has shape {param.shape}, expected {x.shape[-1:]} "
                f"(the last axis of x, shape {x.shape})"
            )
    return LayerNorm.apply(x, weight, bias, eps=eps)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=axis)


def relu(x: Tensor) -> Tensor:
    return ops.Relu.apply(x)


def gelu(x: Tensor) -> Tensor:
    """GELU with the tanh approximation, as BERT uses."""
    return ops.Gelu.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return ops.Sigmoid.apply(x)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    return ops.Dropout.apply(x, p=p)


def linear(x: Tensor, weight: Tensor, bias=None) -> Tensor:
    """x @ weight^T + bias, PyTorch's layout: weight (out, in), bias (out,)."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight "
            f"expects {weight.shape[1]} (weight shape {weight.shape}, (out, in))"
        )
    y = x @ weight.T
    return y + bias if bias is not None else y


def masked_fill(x: Tensor, mask, value: float) -> Tensor:
    """Where ``mask`` is True put ``value``; elsewhere keep ``x`` (gradient flows only there)."""
    return ops.MaskedFill.apply(x, mask=raw(mask), value=value)


def cross_entropy(logits: Tensor, targets, ignore_index: int = -100) -> Tensor:
    """Mean softmax cross-entropy of logits (N, C) against int targets (N,), skipping ``ignore_index``."""
    return CrossEntropy.apply(logits, raw(targets), ignore_index=ignore_index)


def binary_cross_entropy_with_logits(logits: Tensor, targets) -> Tensor:
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], stable for any |logits|."""
    return BinaryCrossEntropyWithLogits.apply(logits, raw(targets))
