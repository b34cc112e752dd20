"""The attention layers: Q, K, V projections around one attention op each.

Every attention module has the same interface,
``forward(x (B, L, D), causal: bool, key_mask (B, L) bool or None) -> (B, L, D)``,
so :class:`~tinyhydra.nn.TransformerBlock` (shared by SASRec and BERT4Rec) takes the
attention kind as a string (:func:`make_attention`). The kinds are the registry
``ATTENTION_KINDS`` (name -> :class:`AttentionKind`: the layer class, the op it calls, its
heads, its directions, a summary); :func:`register_attention` is the only way in, for the
built-in kinds too, so a new kind is one subclass of :class:`ProjectedAttention` and one
decorator (docs/extending.md).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..attention.decayed_hydra import half_life
from ..attention.masking import causal_mask, check_flag, check_key_mask, merge_heads, split_heads
from ..engine import backend
from ..engine.graph import no_grad
from ..engine.tensor import Tensor, raw
from .layers import DepthwiseConv1d, Dropout, Linear
from .module import Module, Parameter

__all__ = [
    "ProjectedAttention", "MultiHeadSoftmaxAttention", "HydraAttention", "DecayedHydraAttention",
    "LinearAttention", "AttentionKind", "ATTENTION_KINDS", "register_attention", "make_attention",
    "half_life_decays",
]
DIRECTIONS = ("causal", "bidirectional")


@dataclass(frozen=True)
class AttentionKind:
    """One entry of ``ATTENTION_KINDS``.

    layer:         the module class, ``layer(dim, num_heads, dropout, **options)``, or
                   ``layer(dim, dropout=dropout, **options)`` when it takes no heads;
    op:            the functional op its ``attend`` calls (e.g. ``F.hydra_attention``);
    takes_heads:   whether ``num_heads`` reaches the layer;
    default_heads: the heads when ``num_heads`` is None; None = one head per feature (H = D);
    directions:    the directions it supports, a subset of ("causal", "bidirectional");
    summary:       one line for tables and ``--help``.
    """

    name: str
    layer: type
    op: Callable
    takes_heads: bool
    default_heads: int | None
    directions: tuple[str, ...]
    summary: str

    def build(self, dim: int, num_heads: int | None = None, dropout: float = 0.0, **options) -> Module:
        """The layer; ``num_heads`` None is ``default_heads``, ignored when it takes none."""
        direction = DIRECTIONS[0] if options.get("causal", True) else DIRECTIONS[1]
        if direction not in self.directions:
            raise ValueError(f"attention kind {self.name!r} is not {direction}; it supports "
                             f"{' and '.join(self.directions)}")
        if not self.takes_heads:
            return self.layer(dim, dropout=dropout, **options)
        return self.layer(dim, self.default_heads if num_heads is None else num_heads, dropout, **options)


ATTENTION_KINDS: dict[str, AttentionKind] = {}


def register_attention(name: str, op: Callable, summary: str, *, takes_heads: bool = True,
                       default_heads: int | None = 1, directions: tuple[str, ...] = DIRECTIONS):
    """Class decorator: registers the layer under ``name`` in ``ATTENTION_KINDS`` (the fields of
    :class:`AttentionKind`); a taken name or an unknown direction is a ValueError."""
    if name in ATTENTION_KINDS:
        raise ValueError(f"attention kind {name!r} is already registered; pick another name")
    if not directions or set(directions) - set(DIRECTIONS):
        raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {directions}")

    def register(layer: type) -> type:
        ATTENTION_KINDS[name] = AttentionKind(name, layer, op, takes_heads,
                                              default_heads if takes_heads else None,
                                              tuple(directions), summary)
        return layer
    return register


class ProjectedAttention(Module):
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


@register_attention("softmax", F.softmax_attention, "scaled dot-product attention, O(L^2 D) (SASRec, "
                    "BERT4Rec)")
class MultiHeadSoftmaxAttention(ProjectedAttention):
    """Scaled dot-product attention with ``num_heads`` heads of dim/num_heads features.

    The mask handed to ``F.softmax_attention`` is causal (L, L) AND key_mask (B, 1, 1, L),
    so no query attends to padding; a query with no allowed key (a left-padded position
    under the causal mask) outputs 0.
    """

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads = num_heads

    def attend(self, q, k, v, causal, key_mask):
        length = q.shape[1]
        mask = None
        if key_mask is not None:
            key_mask = backend.to_device(raw(key_mask), backend.device_of(q.data))
            mask = key_mask[:, None, None, :]  # (B, 1, 1, L): broadcast over heads and queries
        if causal:
            tril = causal_mask(length, like=q)  # (L, L): query i sees keys t <= i
            mask = tril if mask is None else mask & tril  # (B, 1, L, L)
        heads = [split_heads(x, self.num_heads) for x in (q, k, v)]  # (B, H, L, D/H) each
        return merge_heads(F.softmax_attention(*heads, mask=mask))  # (B, H, L, D/H) -> (B, L, D)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


@register_attention("hydra", F.hydra_attention, "Hydra: cosine linear attention, one head per feature, "
                    "O(L D) (the HydraRec paper)", default_heads=None)
class HydraAttention(ProjectedAttention):
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


@register_attention("decayed-hydra", F.decayed_hydra_attention, "Hydra whose context decays "
                    "with distance, a learned rate per feature, O(L D)", takes_heads=False)
class DecayedHydraAttention(ProjectedAttention):
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


@register_attention("linear", F.linear_attention, "elu+1 linear attention per head, O(L D^2 / H) "
                    "(Katharopoulos et al. 2020)")
class LinearAttention(ProjectedAttention):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020), per head."""

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads = num_heads

    def attend(self, q, k, v, causal, key_mask):
        return F.linear_attention(q, k, v, self.num_heads, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


def make_attention(kind: str, dim: int, num_heads: int | None = None, dropout: float = 0.0,
                   **options) -> Module:
    """The attention module of ``kind``, a key of ``ATTENTION_KINDS``. ``num_heads`` None is
    the kind's default (1 for softmax and linear, one per feature for hydra); a kind that takes
    no heads (decayed-hydra) ignores it. ``options``: ``conv`` and ``causal`` for every kind,
    the layer's own (``max_len``, ``learn_decay`` for "decayed-hydra")."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"unknown attention kind {kind!r}; expected one of {', '.join(ATTENTION_KINDS)} "
                         f"(nn.register_attention adds one)")
    return ATTENTION_KINDS[kind].build(dim, num_heads, dropout, **options)
