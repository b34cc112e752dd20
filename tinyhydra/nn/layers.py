"""The basic layers of the two encoders, as Modules (the machinery is in :mod:`tinyhydra.nn.module`):
Linear, Embedding, LayerNorm, Dropout, FeedForward and a short depthwise convolution.
All are re-exported by :mod:`tinyhydra.nn`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..attention.conv import conv_offsets
from ..engine import backend
from ..engine.embedding import as_ids, check_ids
from ..engine.tensor import Tensor
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "LayerNorm", "Dropout", "FeedForward", "DepthwiseConv1d"]


def _init_rng():
    """The host generator used for initialisation (seeded by ``tinyhydra.manual_seed``)."""
    return backend.default_rng(np)


class Linear(Module):
    """y = x W^T + b.  x (..., in) -> y (..., out); W (out, in), b (out,).

    PyTorch's default initialisation: W and b uniform in (-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = _init_rng()
        self.weight = Parameter(
            rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32))
        self.bias = (Parameter(rng.uniform(-bound, bound, out_features).astype(np.float32))
                     if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Rows of a (num_embeddings, dim) table for integer ids: (...) -> (..., dim).

    Initialised N(0, 0.02^2) (as BERT); the ``padding_idx`` row starts at zero.
    """

    def __init__(self, num_embeddings: int, dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.dim, self.padding_idx = num_embeddings, dim, padding_idx
        weight = _init_rng().normal(0.0, 0.02, (num_embeddings, dim)).astype(np.float32)
        if padding_idx is not None:
            if not 0 <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is not in [0, {num_embeddings})")
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def prepare_ids(self, ids, name=None, what="ids"):
        """``ids`` (NumPy, CuPy, Tensor or lists) as an int array on the weight's device;
        errors say ``name: what`` (default: this class and "ids").

        Host ids are range-checked before they move, because on the GPU the check
        would synchronise the device (``F.embedding`` skips it there).
        """
        name = name or type(self).__name__
        ids = as_ids(ids, name, what)
        if not backend.is_gpu_array(ids):
            check_ids(ids, self.num_embeddings, name, what)
        return backend.to_device(ids, self.weight.device)

    def forward(self, ids) -> Tensor:
        return F.embedding(self.prepare_ids(ids), self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.dim}, padding_idx={self.padding_idx}"


class LayerNorm(Module):
    """Normalise over the last axis (dim), then scale and shift: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim, dtype=np.float32))
        self.bias = Parameter(np.zeros(dim, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` while training; the identity in eval mode."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FeedForward(Module):
    """Position-wise MLP: Linear(dim, hidden) -> activation -> Dropout -> Linear(hidden, dim).

    x (..., dim) -> (..., dim); ``activation`` is "relu" (SASRec) or "gelu" (BERT4Rec).
    """

    def __init__(self, dim: int, hidden: int, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(_ACTIVATIONS)}")
        self.activation = activation
        self.fc1 = Linear(dim, hidden)
        self.dropout = Dropout(dropout)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(_ACTIVATIONS[self.activation](self.fc1(x))))


class DepthwiseConv1d(Module):
    """Each feature mixes its ``width`` neighbours along the sequence (F.depthwise_conv1d);
    causal taps look back only. Starts as the identity (the offset-0 tap 1, the rest 0)."""

    def __init__(self, dim: int, width: int = 4, causal: bool = True):
        super().__init__()
        if width < 1:
            raise ValueError(f"DepthwiseConv1d: width must be >= 1, got {width}")
        self.width, self.causal = width, causal
        weight = np.zeros((width, dim), dtype=np.float32)
        weight[conv_offsets(width, causal).index(0)] = 1.0
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(dim, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.depthwise_conv1d(x, self.weight, self.bias, causal=self.causal)

    def extra_repr(self):
        return f"width={self.width}, causal={self.causal}"
