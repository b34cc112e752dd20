"""The layers of the two encoders, as Modules (the machinery is in :mod:`tinyhydra.module`).

``Module``, ``Parameter`` and ``ModuleList`` are re-exported here, so ``nn.Module``
works as in PyTorch.

Every attention module has the same interface,
``forward(x (B, L, D), causal: bool, key_mask (B, L) bool or None) -> (B, L, D)``,
so :class:`TransformerBlock` (shared by SASRec and BERT4Rec) takes the attention
kind as a string: ``"softmax"``, ``"hydra"`` or ``"linear"``.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from . import functional as F
from .embedding import check_ids
from .masking import causal_mask
from .module import Module, ModuleList, Parameter
from .tensor import Tensor, raw

__all__ = [
    "Parameter", "Module", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout",
    "FeedForward", "MultiHeadSoftmaxAttention", "HydraAttention", "LinearAttention",
    "ATTENTION_KINDS", "make_attention", "TransformerBlock",
]


def _init_rng():
    """The host generator used for initialisation (seeded by ``tinyhydra.manual_seed``)."""
    return backend.default_rng(np)


# ----------------------------------------------------------------------- layers
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

    def prepare_ids(self, ids):
        """``ids`` (NumPy, CuPy, Tensor or lists) as an int array on the weight's device.

        Host ids are range-checked before they move, because on the GPU the check
        would synchronise the device (``F.embedding`` skips it there).
        """
        ids = ids.data if isinstance(ids, Tensor) else ids
        if not backend.is_gpu_array(ids):
            ids = np.asarray(ids)
            check_ids(ids, self.num_embeddings, name=type(self).__name__)
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


# -------------------------------------------------------------------- attention
class _ProjectedAttention(Module):
    """What every attention kind shares: Q, K, V projections, an attention function on
    (B, L, D), dropout on its output (the fused kernels have no attention-probability
    dropout, so the attended values are dropped instead), and the output projection.

    Subclasses implement ``attend(q, k, v, causal, key_mask) -> (B, L, D)``.
    """

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.dim = dim
        self.query = Linear(dim, dim)
        self.key = Linear(dim, dim)
        self.value = Linear(dim, dim)
        self.out = Linear(dim, dim)
        self.dropout = Dropout(dropout)

    def attend(self, q, k, v, causal, key_mask):
        raise NotImplementedError

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (B, L, {self.dim}), got {x.shape}")
        context = self.attend(self.query(x), self.key(x), self.value(x), causal, key_mask)
        return self.out(self.dropout(context))


def _check_heads(dim, num_heads):
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f"num_heads={num_heads} must be >= 1 and divide dim={dim}")


class MultiHeadSoftmaxAttention(_ProjectedAttention):
    """Scaled dot-product attention with ``num_heads`` heads of dim/num_heads features.

    The mask handed to ``F.softmax_attention`` is causal (L, L) AND key_mask (B, 1, 1, L),
    so no query attends to padding; a query with no allowed key (a left-padded position
    under the causal mask) outputs 0.
    """

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout)
        self.num_heads = num_heads

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        x = x.reshape(batch, length, self.num_heads, dim // self.num_heads)  # (B, L, H, D/H)
        return x.transpose(0, 2, 1, 3)  # (B, H, L, D/H)

    def attend(self, q, k, v, causal, key_mask):
        batch, length, dim = q.shape
        mask = None
        if key_mask is not None:
            key_mask = backend.to_device(raw(key_mask), backend.device_of(q.data))
            mask = key_mask[:, None, None, :]  # (B, 1, 1, L): broadcast over heads and queries
        if causal:
            tril = causal_mask(length, like=q)  # (L, L): query i sees keys t <= i
            mask = tril if mask is None else mask & tril  # (B, 1, L, L)
        context = F.softmax_attention(
            self._split_heads(q), self._split_heads(k), self._split_heads(v), mask=mask
        )  # (B, H, L, D/H)
        return context.transpose(0, 2, 1, 3).reshape(batch, length, dim)  # (B, L, D)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


class HydraAttention(_ProjectedAttention):
    """Hydra attention (Bolya et al. 2022): as many heads as features, linear in L.

    The HydraRec paper's attention: ``F.hydra_attention(q, k, v, causal, key_mask)``.
    """

    def attend(self, q, k, v, causal, key_mask):
        return F.hydra_attention(q, k, v, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}"


class LinearAttention(_ProjectedAttention):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020), per head."""

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout)
        self.num_heads = num_heads

    def attend(self, q, k, v, causal, key_mask):
        return F.linear_attention(q, k, v, self.num_heads, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


ATTENTION_KINDS = ("softmax", "hydra", "linear")


def make_attention(kind: str, dim: int, num_heads: int = 1, dropout: float = 0.0) -> Module:
    """The attention module for ``kind``: "softmax", "hydra" (num_heads unused: one
    head per feature) or "linear"."""
    if kind == "softmax":
        return MultiHeadSoftmaxAttention(dim, num_heads, dropout)
    if kind == "hydra":
        return HydraAttention(dim, dropout)
    if kind == "linear":
        return LinearAttention(dim, num_heads, dropout)
    raise ValueError(f"unknown attention kind {kind!r}; expected one of {ATTENTION_KINDS}")


class TransformerBlock(Module):
    """One encoder layer, shared by SASRec and BERT4Rec.

    Pre-LN (``norm_first=True``, as SASRec's implementation)::

        x = x + Dropout(Attention(LN(x)))
        x = x + Dropout(FeedForward(LN(x)))

    Post-LN (``norm_first=False``, as the original Transformer)::

        x = LN(x + Dropout(Attention(x)));  x = LN(x + Dropout(FeedForward(x)))

    Then padded positions are zeroed (times the (B, L, 1) float key mask), as SASRec
    does, so whatever they hold never reaches the next block.
    """

    def __init__(self, dim: int, num_heads: int = 1, attention: str = "softmax",
                 hidden: int | None = None, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.attention = make_attention(attention, dim, num_heads, dropout)
        self.attention_norm = LayerNorm(dim)
        self.attention_dropout = Dropout(dropout)
        self.feed_forward = FeedForward(dim, hidden or dim, activation, dropout)
        self.feed_forward_norm = LayerNorm(dim)
        self.feed_forward_dropout = Dropout(dropout)

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        if self.norm_first:
            x = x + self.attention_dropout(
                self.attention(self.attention_norm(x), causal=causal, key_mask=key_mask))
            x = x + self.feed_forward_dropout(self.feed_forward(self.feed_forward_norm(x)))
        else:
            x = self.attention_norm(
                x + self.attention_dropout(self.attention(x, causal=causal, key_mask=key_mask)))
            x = self.feed_forward_norm(x + self.feed_forward_dropout(self.feed_forward(x)))
        if key_mask is not None:
            keep = backend.to_device(raw(key_mask), x.device)[:, :, None].astype(x.dtype)
            x = x * keep  # (B, L, D) * (B, L, 1)
        return x
