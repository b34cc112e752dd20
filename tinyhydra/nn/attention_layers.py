"""The attention layers: Q, K, V projections around one attention op each.

Every attention module has the same interface,
``forward(x (B, L, D), causal: bool, key_mask (B, L) bool or None) -> (B, L, D)``,
so :class:`~tinyhydra.nn.TransformerBlock` (shared by SASRec and BERT4Rec) takes the
attention kind as a string (:func:`make_attention`): ``"softmax"``, ``"hydra"``,
``"decayed-hydra"`` or ``"linear"``. All four are re-exported by :mod:`tinyhydra.nn`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..attention.decayed_hydra import half_life
from ..attention.masking import causal_mask, check_flag, check_key_mask
from ..engine import backend
from ..engine.graph import no_grad
from ..engine.tensor import Tensor, raw
from .layers import DepthwiseConv1d, Dropout, Linear
from .module import Module, Parameter

__all__ = [
    "MultiHeadSoftmaxAttention", "HydraAttention", "DecayedHydraAttention", "LinearAttention",
    "ATTENTION_KINDS", "make_attention", "half_life_decays",
]


class _ProjectedAttention(Module):
    """What every attention kind shares: Q, K, V projections, an attention function on
    (B, L, D), dropout on its output (the fused kernels have no attention-probability
    dropout, so the attended values are dropped instead), and the output projection.
    ``conv`` > 0 puts a :class:`DepthwiseConv1d` of that width (causal when ``causal``)
    in front of the three projections.

    Subclasses implement ``attend(q, k, v, causal, key_mask) -> (B, L, D)``.
    """

    def __init__(self, dim: int, dropout: float = 0.0, conv: int = 0, causal: bool = True):
        super().__init__()
        self.dim = dim
        self.conv = DepthwiseConv1d(dim, conv, causal) if conv else None
        self.query = Linear(dim, dim)
        self.key = Linear(dim, dim)
        self.value = Linear(dim, dim)
        self.out = Linear(dim, dim)
        self.dropout = Dropout(dropout)

    def attend(self, q, k, v, causal, key_mask):
        raise NotImplementedError

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        name = type(self).__name__
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"{name}: expected input of shape (B, L, {self.dim}), got {x.shape}")
        check_flag(name, "causal", causal)
        if key_mask is not None:
            key_mask = check_key_mask(name, key_mask, x.shape[:2], x.data)
        if self.conv is not None:
            x = self.conv(x)  # (B, L, D): local mixing before the projections
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

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
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

    The HydraRec paper's attention: ``F.hydra_attention(q, k, v, causal=..., key_mask=...)``.
    ``num_heads`` None is that (H = D); an H dividing dim gives multi-head cosine linear
    attention with heads of dim/H features (``normalize``: "global" or "per_head", see
    :mod:`tinyhydra.attention.hydra`).
    """

    def __init__(self, dim: int, num_heads: int | None = None, dropout: float = 0.0,
                 normalize: str = "global", **options):
        if num_heads is not None:
            _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads, self.normalize = num_heads, normalize

    def attend(self, q, k, v, causal, key_mask):
        return F.hydra_attention(q, k, v, causal=causal, key_mask=key_mask,
                                 num_heads=self.num_heads, normalize=self.normalize)

    def extra_repr(self):
        heads = "" if self.num_heads is None else f", num_heads={self.num_heads}"
        return f"dim={self.dim}{heads}" + ("" if self.normalize == "global" else ", normalize=per_head")


def half_life_decays(dim: int, longest: int) -> np.ndarray:
    """Decays a_f = 2^(-1/h_f) with half-lives h_f spread log-uniformly from 1 to
    ``longest`` positions (dim,), as LRU and RetNet spread theirs over time scales."""
    half_lives = np.exp(np.linspace(0.0, math.log(max(longest, 1)), dim))
    return 2.0 ** (-1.0 / half_lives)


class DecayedHydraAttention(_ProjectedAttention):
    """Hydra attention whose context forgets: ``F.decayed_hydra_attention`` with one decay
    per feature (and per direction when bidirectional), decay = sigmoid(decay_logit).

    The decays start at :func:`half_life_decays` (half-lives 1 .. ``max_len``); with
    ``learn_decay=False`` they stay there (a fixed multi-scale decay, no parameter).
    The layer is built for one direction: ``causal`` here must match the call's.
    """

    def __init__(self, dim: int, dropout: float = 0.0, conv: int = 0, causal: bool = True,
                 max_len: int = 200, learn_decay: bool = True):
        super().__init__(dim, dropout, conv=conv, causal=causal)
        self.causal, self.learn_decay = causal, learn_decay
        decays = half_life_decays(dim, max_len)
        decays = decays if causal else np.stack([decays, decays])  # (D,) or (2, D)
        logits = np.log(decays / (1.0 - decays)).astype(np.float32)
        if learn_decay:
            self.decay_logit = Parameter(logits)
        else:
            self._fixed_decay = decays.astype(np.float32)

    def decay(self) -> Tensor:
        """The decays in use, (D,) causal or (2, D), in [0, 1]."""
        if self.learn_decay:
            return F.sigmoid(self.decay_logit)
        device = self.query.weight.device
        if backend.device_of(self._fixed_decay) != device:  # moved once, after model.to(device)
            self._fixed_decay = backend.to_device(self._fixed_decay, device)
        return Tensor(self._fixed_decay)

    def half_lives(self) -> np.ndarray:
        """log(1/2) / log(a): positions after which a feature's context weight halves."""
        with no_grad():
            return half_life(backend.as_numpy(self.decay().data))

    def attend(self, q, k, v, causal, key_mask):
        if causal != self.causal:
            raise ValueError(f"DecayedHydraAttention was built with causal={self.causal} "
                             f"but called with causal={causal}; build one per direction")
        return F.decayed_hydra_attention(q, k, v, self.decay(), causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, causal={self.causal}, learn_decay={self.learn_decay}"


class LinearAttention(_ProjectedAttention):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020), per head."""

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads = num_heads

    def attend(self, q, k, v, causal, key_mask):
        return F.linear_attention(q, k, v, self.num_heads, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


ATTENTION_KINDS = ("softmax", "hydra", "decayed-hydra", "linear")


def make_attention(kind: str, dim: int, num_heads: int | None = None, dropout: float = 0.0,
                   **options) -> Module:
    """The attention module for ``kind``: "softmax", "hydra", "decayed-hydra" (num_heads
    unused: one head per feature) or "linear". ``num_heads`` None is the kind's default:
    1 for softmax and linear, one per feature (H = dim) for hydra. ``options``: ``conv``
    and ``causal`` for every kind, ``max_len`` and ``learn_decay`` for "decayed-hydra"."""
    if kind == "hydra":
        return HydraAttention(dim, num_heads, dropout, **options)
    if kind == "decayed-hydra":
        return DecayedHydraAttention(dim, dropout, **options)
    num_heads = 1 if num_heads is None else num_heads
    if kind == "softmax":
        return MultiHeadSoftmaxAttention(dim, num_heads, dropout, **options)
    if kind == "linear":
        return LinearAttention(dim, num_heads, dropout, **options)
    raise ValueError(f"unknown attention kind {kind!r}; expected one of {ATTENTION_KINDS}")
