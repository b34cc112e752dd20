r"""Quadratic reference forms of the attention ops, built from composed Tensor ops.

Each function here writes the attention matrix out explicitly, as the equations
read, using only the primitive ops of :mod:`tinyhydra.engine.ops` (``@ * / exp sum``,
``MaskedFill``, ``ClampMin``, ``Relu``). Autograd therefore differentiates them
independently of the hand-written backwards in :mod:`tinyhydra.attention.hydra`,
:mod:`tinyhydra.attention.decayed_hydra`, :mod:`tinyhydra.attention.softmax_attention` and
:mod:`tinyhydra.attention.linear_attention`, which is what
the tests compare against. They cost O(L^2)
memory (Hydra's reference even O(D L^2)): for teaching and testing only.

Feature maps (composed, differentiable, also handy in notebooks):

* :func:`cosine_feature_map_reference`: phi(x) = x / max(||x||, eps), Hydra's
  (the fused raw-array form is :func:`tinyhydra.attention.hydra.cosine_feature_map`)
* :func:`elu_feature_map_reference`: phi(x) = elu(x) + 1, linear attention's
  (fused: :func:`tinyhydra.attention.linear_attention.elu_feature_map`)
"""
from __future__ import annotations

import math

import numpy as np

from ..engine import backend, ops
from ..engine.tensor import Tensor
from .hydra import HYDRA_EPS
from .linear_attention import LINEAR_ATTENTION_EPS
from .masking import as_bool_mask, check_qkv, merge_heads, split_heads, swap_last

__all__ = [
    "softmax_attention_reference", "hydra_attention_reference", "linear_attention_reference",
    "decayed_hydra_attention_reference", "cosine_feature_map_reference", "elu_feature_map_reference",
]


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _constant(array, like: Tensor) -> Tensor:
    """A no-grad Tensor of ``array`` in ``like``'s dtype (e.g. a 0/1 mask)."""
    return Tensor(array.astype(like.dtype))


# ------------------------------------------------------------------------ feature maps
def cosine_feature_map_reference(x, eps: float = HYDRA_EPS) -> Tensor:
    """phi(x) = x / max(||x||_2, eps) over the last axis, composed.

    The norm is sqrt(max(sum x^2, eps^2)), the same function as max(sqrt(sum x^2), eps)
    but with a finite gradient at x = 0 (sqrt's derivative is taken at >= eps^2 > 0).
    """
    x = _tensor(x)
    squared = (x * x).sum(axis=-1, keepdims=True)
    norm = ops.ClampMin.apply(squared, lo=eps * eps).sqrt()
    return x / norm



def elu_feature_map_reference(x) -> Tensor:
    """phi(x) = elu(x) + 1 = relu(x) + exp(min(x, 0)), composed (x + 1 if x > 0 else e^x)."""
    x = _tensor(x)
    return ops.Relu.apply(x) + (-ops.Relu.apply(-x)).exp()


# -------------------------------------------------------------------- softmax attention
def softmax_attention_reference(q, k, v, mask=None) -> Tensor:
    """softmax(q k^T / sqrt(d)) v with the softmax written out: P = e^S / sum e^S.

    Scores are shifted by their (constant, no-grad) row maximum over allowed keys;
    softmax is shift invariant, so values and gradients are unchanged. Masked scores
    are filled with 0 before ``exp`` (so nothing overflows) and their exponentials
    with 0 after; a row with no allowed key has denominator 0, replaced by 1, so
    its output is 0.
    """
    q, k, v = _tensor(q), _tensor(k), _tensor(v)
    check_qkv("softmax_attention_reference", q.data, k.data, v.data)
    xp = backend.get_array_module(q.data)
    scores = (q @ swap_last(k)) * (1.0 / math.sqrt(q.shape[-1]))  # (..., L, S)
    if mask is None:
        shift = scores.data.max(axis=-1, keepdims=True)
        exps = (scores - _constant(shift, scores)).exp()
    else:
        mask = as_bool_mask(mask, "mask", scores.shape, q.data, "softmax_attention_reference")
        blocked = xp.broadcast_to(~mask, scores.shape)
        shift = xp.where(blocked, -np.inf, scores.data).max(axis=-1, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0)
        shifted = ops.MaskedFill.apply(scores - _constant(shift, scores), mask=blocked, value=0.0)
        exps = ops.MaskedFill.apply(shifted.exp(), mask=blocked, value=0.0)
    denom = exps.sum(axis=-1, keepdims=True)
    denom = denom + _constant(denom.data == 0, denom)  # empty rows: 0 / 1 = 0
    return (exps / denom) @ v


# ------------------------------------------------------------------------------- hydra
def _key_weights(key_mask, causal, q_len, k_len, like, fn_name, batch_shape):
    """The constant 0/1 matrix W[i, t] = m_t [t <= i if causal], shape (..., 1?, L, S)."""
    xp = backend.get_array_module(like)
    weight = xp.ones((q_len, k_len), dtype=bool)
    if causal:
        weight = xp.tril(weight)
    if key_mask is not None:
        key_mask = as_bool_mask(key_mask, "key_mask", batch_shape + (k_len,), like, fn_name)
        weight = weight & key_mask[..., None, :]  # (..., L, S)
    return weight


def hydra_attention_reference(q, k, v, causal=False, key_mask=None, eps: float = HYDRA_EPS,
                              num_heads=None, normalize: str = "global") -> Tensor:
    """Hydra as H cosine attention heads of dh = D/H features, each with its own L x L matrix:

        A_h[i, t] = phi(q_i)^h . phi(k_t)^h m_t [t <= i if causal]      (..., H, L, L)
        out_i^h   = sum_t A_h[i, t] v_t^h

    ``num_heads`` None is H = D (one feature per head, Hydra): the (..., D, L, L) tensor
    is built explicitly, as in the original formulation of multi-head attention with H = D
    heads and no softmax. phi normalises over all D features (``normalize="global"``) or
    over each head's dh features (``"per_head"``).
    """
    q, k, v = _tensor(q), _tensor(k), _tensor(v)
    check_qkv("hydra_attention_reference", q.data, k.data, v.data,
              same_length=causal, same_value_dim=True)
    *batch, q_len, features = q.shape
    num_heads = features if num_heads is None else num_heads
    if normalize == "global":
        q_h = split_heads(cosine_feature_map_reference(q, eps), num_heads)  # (..., H, L, dh)
        k_h = split_heads(cosine_feature_map_reference(k, eps), num_heads)
    else:
        q_h = cosine_feature_map_reference(split_heads(q, num_heads), eps)
        k_h = cosine_feature_map_reference(split_heads(k, num_heads), eps)
    weight = _key_weights(key_mask, causal, q_len, k.shape[-2], q.data, "hydra_attention_reference",
                          tuple(batch))
    weight = weight[..., None, :, :]  # (..., 1, L, S): the same for every head
    scores = (q_h @ swap_last(k_h)) * _constant(weight, q_h)  # A (..., H, L, S)
    return merge_heads(scores @ split_heads(v, num_heads))  # (..., L, D)


def _decay_matrices(decay, length, causal) -> Tensor:
    """W_f[i, t] = a0_f^(i-t) for t <= i, a1_f^(t-i) for t > i (0 when causal): (D, L, L).

    Built as explicit powers (ops.Pow per lag, differentiable in the decay), summed
    with 0/1 masks that select each lag's diagonal.
    """
    xp = backend.get_array_module(decay.data)
    lag = xp.arange(length)[:, None] - xp.arange(length)[None, :]  # (L, L) i - t
    earlier = decay if causal else decay[0]  # (D,)
    matrices = None
    for n in range(length):
        terms = [(earlier, lag == n)]  # a0^n on the diagonal t = i - n
        if not causal and n > 0:
            terms.append((decay[1], lag == -n))  # a1^n on the diagonal t = i + n
        for base, diagonal in terms:
            power = ops.Pow.apply(base, exponent=n) if n else base * 0 + 1  # (D,), a^0 = 1
            term = power.reshape(-1, 1, 1) * _constant(diagonal[None], power)  # (D, L, L)
            matrices = term if matrices is None else matrices + term
    return matrices


def decayed_hydra_attention_reference(q, k, v, decay, causal=False, key_mask=None,
                                      eps: float = HYDRA_EPS) -> Tensor:
    """Decayed Hydra with its (D, L, L) decay matrices built explicitly:

        A_f[i, t] = phi(q)_{i f} W_f[i, t] m_t phi(k)_{t f}          (..., D, L, L)
        out[i, f] = sum_t A_f[i, t] v[t, f]

    W from :func:`_decay_matrices`; decay (D,) causal, (2, D) bidirectional.
    """
    q, k, v, decay = _tensor(q), _tensor(k), _tensor(v), _tensor(decay)
    check_qkv("decayed_hydra_attention_reference", q.data, k.data, v.data,
              same_length=True, same_value_dim=True)
    *batch, length, features = q.shape
    q_f = swap_last(cosine_feature_map_reference(q, eps)).reshape(*batch, features, length, 1)
    k_f = swap_last(cosine_feature_map_reference(k, eps)).reshape(*batch, features, 1, length)
    v_f = swap_last(v).reshape(*batch, features, length, 1)
    keys = _key_weights(key_mask, False, length, length, q.data,
                        "decayed_hydra_attention_reference", tuple(batch))[..., None, :, :]
    scores = q_f * k_f * _decay_matrices(decay, length, causal) * _constant(keys, q_f)
    out = (scores @ v_f).reshape(*batch, features, length)  # (..., D, L)
    return swap_last(out)  # (..., L, D)


# ------------------------------------------------------------------- linear attention
def linear_attention_reference(q, k, v, num_heads, causal=False, key_mask=None,
                               eps: float = LINEAR_ATTENTION_EPS) -> Tensor:
    """elu+1 linear attention written with its (..., H, L, L) attention matrix:

        A[i, t] = phi(q_i) . phi(k_t) m_t [t <= i if causal]
        out_i   = sum_t A[i, t] v_t / (sum_t A[i, t] + eps)
    """
    q, k, v = _tensor(q), _tensor(k), _tensor(v)
    check_qkv("linear_attention_reference", q.data, k.data, v.data, same_length=causal)
    if q.shape[-1] % num_heads or v.shape[-1] % num_heads:
        raise ValueError(
            f"linear_attention_reference: num_heads={num_heads} must divide the feature "
            f"dimensions of q/k ({q.shape[-1]}) and v ({v.shape[-1]})"
        )
    *batch, q_len, _ = q.shape
    q_h = elu_feature_map_reference(split_heads(q, num_heads))  # (..., H, L, dh)
    k_h = elu_feature_map_reference(split_heads(k, num_heads))
    v_h = split_heads(v, num_heads)
    weight = _key_weights(key_mask, causal, q_len, k.shape[-2], q.data, "linear_attention_reference",
                          tuple(batch))
    scores = (q_h @ swap_last(k_h)) * _constant(weight[..., None, :, :], q_h)  # (..., H, L, S)
    out = (scores @ v_h) / (scores.sum(axis=-1, keepdims=True) + eps)  # (..., H, L, dvh)
    return merge_heads(out)
