r"""Decayed Hydra attention: Hydra whose context forgets, one decay per feature.

Plain Hydra's causal context kv_i = sum_{t<=i} phi(k_t) * v_t weighs the first item
of a history as much as the last one, and its bidirectional context is one global sum
that is the same for every position. Decayed Hydra gives every feature f a decay
a_f in [0, 1] (its half-life is log(1/2) / log(a_f) positions)::

    causal:         kv_i = sum_{t<=i} a^(i-t) u_t                     decay a (D,)
    bidirectional:  kv_i = sum_{t<=i} a0^(i-t) u_t + sum_{t>i} a1^(t-i) u_t
                                                                      decay (a0, a1) (2, D)
    u_t = m_t phi(k_t) * v_t,    out_i = phi(q_i) * kv_i              (* over the D features)

a = 1 is plain Hydra in both directions, a1 = 0 the causal form. The causal kv is the
state of a diagonal linear recurrence kv_i = a * kv_{i-1} + u_i, the recurrence of
LRU (Orvieto et al. 2023), LRURec and RetNet's retention with one decay per channel.

Run one position at a time, the recurrence is a Python loop over L; the parallel form
(the (D, L, L) matrices W_f[i, t] = a_f^(i-t)) needs L^2 memory. The fused op uses
:func:`tinyhydra.attention.scan.prefix_sum`, which runs the recurrence in two levels, inside
chunks of about sqrt(L) positions and then across them: O(L D) time and memory, and no
negative power of a, so nothing overflows for small decays. The quadratic twin is
:func:`tinyhydra.attention.reference.decayed_hydra_attention_reference`.
"""
from __future__ import annotations

import numpy as np

from ..engine import backend
from ..engine.ops import Sigmoid
from ..engine.tensor import Function, Tensor, raw
from .hydra import HYDRA_EPS, cosine_feature_map, cosine_feature_map_backward
from .masking import as_bool_mask, check_flag, check_qkv, zero_masked_keys
from .scan import prefix_sum, reverse_prefix_sum

__all__ = ["decayed_hydra_attention", "DecayedHydraAttentionFunction", "half_life",
           "learned_half_lives"]


def half_life(decay):
    """Positions after which a weight a^n has halved: n = log(1/2) / log(a) (inf at a = 1).

    Host arrays in, host arrays out (for reports and plots)."""
    decay = np.clip(np.asarray(decay, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.log(0.5) / np.log(decay)


def learned_half_lives(state: dict) -> dict:
    """{parameter name: half-lives} of every ``decay_logit`` in a model's ``state_dict()``
    (or a run's best.npz / checkpoint "model"): (D,) causal, (2, D) bidirectional."""
    return {name: half_life(Sigmoid.apply(Tensor(np.asarray(logit, dtype=np.float64))).data)
            for name, logit in state.items() if name.endswith("decay_logit")}


def _lag_one_dot(a, b):
    """sum over every axis but the last of a_t * b_{t-1} (t along axis -2): (D,)."""
    return (a[..., 1:, :] * b[..., :-1, :]).reshape(-1, a.shape[-1]).sum(axis=0)


class DecayedHydraAttentionFunction(Function):
    r"""Fused decayed Hydra attention, O(L D) memory, hand-written backward.

    Write P_a for the lower-triangular (L, L) matrix P_a[i, t] = a^(i-t) (t <= i), one
    per feature, so that P_a x = prefix_sum(x, a) and P_a^T x = reverse_prefix_sum(x, a)
    (:mod:`tinyhydra.attention.scan`). The strictly-later part is P_a^T - I. Forward::

        K, V = where(m, K, 0), where(m, V, 0)               masked keys selected away
        u   = phi(K) * V                                    (..., L, D)
        y   = P_a0 u;  kv = y                               causal
        r   = P_a1^T u;  kv = y + r - u                     bidirectional
        out = phi(Q) * kv

    Backward, for G = dL/dout and h = G * phi(Q)::

        dphi(Q) = G * kv
        du      = P_a0^T h                  (+ P_a1 h - h, bidirectional)
        dV      = du * phi(K);  dphi(K) = du * V            (0 at masked keys)
        da0     = sum_t (P_a0^T h)_t y_{t-1}
        da1     = sum_t r_t (P_a1 h)_{t-1}

    The decay gradients: the entry a^n of P_a has derivative n a^(n-1), and

        h^T (dP_a/da) x = sum_{t<i} h_i (i-t) a^(i-t-1) x_t = sum_s (P_a^T h)_s (P_a x)_{s-1}

    (on the right, each pair t < i gets one term a^(i-s) a^(s-1-t) for every s with
    t < s <= i: i - t terms). For the later part, h^T (dP_a^T/da) u = u^T (dP_a/da) h is
    the same identity with h and u swapped. Sums run over
    every leading axis, since a decay is shared by the whole batch. Masked keys are
    removed with ``where``, so a NaN or inf there reaches neither the output nor a
    gradient.
    """

    @staticmethod
    def forward(ctx, q, k, v, decay, causal=False, key_mask=None, eps=HYDRA_EPS):
        k, v = zero_masked_keys(k, key_mask), zero_masked_keys(v, key_mask)
        q_hat, q_norm, q_above = cosine_feature_map(q, eps)
        k_hat, k_norm, k_above = cosine_feature_map(k, eps)  # 0 at masked keys
        u = k_hat * v  # (..., L, D), 0 at masked keys
        decay = decay.astype(q.dtype)
        causal_decay = decay if causal else decay[0]
        kv = y = prefix_sum(u, causal_decay)  # (..., L, D)
        later = None
        if not causal:
            later = reverse_prefix_sum(u, decay[1])
            kv = y + later - u
        ctx.causal = causal
        ctx.save_for_backward(q_hat, q_norm, q_above, k_hat, k_norm, k_above, v, decay, kv, y, later)
        return q_hat * kv

    @staticmethod
    def backward(ctx, g):
        q_hat, q_norm, q_above, k_hat, k_norm, k_above, v, decay, kv, y, later = ctx.saved_tensors
        xp = backend.get_array_module(g)
        need_q, need_k, need_v, need_decay = ctx.needs_input_grad[:4]
        grad_q = grad_k = grad_v = grad_decay = None
        if need_q:
            grad_q = cosine_feature_map_backward(q_hat, q_norm, q_above, g * kv)
        if need_k or need_v or need_decay:
            h = g * q_hat  # dL/dkv
            earlier_adjoint = reverse_prefix_sum(h, decay if ctx.causal else decay[0])
            grad_u = earlier_adjoint
            if ctx.causal:
                grad_decay = _lag_one_dot(earlier_adjoint, y)
            else:
                later_adjoint = prefix_sum(h, decay[1])
                grad_u = earlier_adjoint + later_adjoint - h
                grad_decay = xp.stack([_lag_one_dot(earlier_adjoint, y),
                                       _lag_one_dot(later, later_adjoint)])
            if need_v:  # k^ = 0 at masked keys, so their gradients are exactly 0
                grad_v = grad_u * k_hat
            if need_k:
                grad_k = cosine_feature_map_backward(k_hat, k_norm, k_above, grad_u * v)
        return grad_q, grad_k, grad_v, grad_decay


def decayed_hydra_attention(q, k, v, decay, *, causal=False, key_mask=None,
                            eps=HYDRA_EPS) -> Tensor:
    """Hydra attention whose context decays with distance. See
    :class:`DecayedHydraAttentionFunction` for the maths.

    q, k, v (..., L, D) Tensors; ``decay`` a Tensor or array of values in [0, 1]:
    (D,) when ``causal``, (2, D) otherwise (row 0 for earlier keys, row 1 for later
    ones); ``key_mask`` bool (..., L), True = real item. Output (..., L, D).
    Gradients reach q, k, v and decay.
    """
    q_raw, k_raw, v_raw = raw(q), raw(k), raw(v)
    check_flag("decayed_hydra_attention", "causal", causal)
    check_qkv("decayed_hydra_attention", q_raw, k_raw, v_raw, same_value_dim=True,
              same_length="causal attention" if causal else "decay by distance i - t")
    decay_raw = raw(decay)
    if not hasattr(decay_raw, "shape"):  # a list or a number
        decay = decay_raw = backend.get_array_module(q_raw).asarray(decay_raw, dtype=q_raw.dtype)
    elif not isinstance(decay, Tensor) and backend.device_of(decay_raw) != backend.device_of(q_raw):
        decay = decay_raw = backend.to_device(decay_raw, backend.device_of(q_raw))  # a constant array
    dim = q_raw.shape[-1]
    expected = (dim,) if causal else (2, dim)
    if tuple(decay_raw.shape) != expected:
        form = "causal: one decay per feature" if causal else "bidirectional: (earlier, later) rows"
        raise ValueError(f"decayed_hydra_attention: decay must have shape {expected} ({form}), "
                         f"got {tuple(decay_raw.shape)}")
    # checked on the host only: on a GPU the check would wait for the device at every call
    if backend.device_of(decay_raw) == "cpu" and not ((decay_raw >= 0) & (decay_raw <= 1)).all():
        raise ValueError("decayed_hydra_attention: decay values must lie in [0, 1] (1 = plain "
                         "Hydra, 0 = only the current item); e.g. pass sigmoid(theta)")
    if key_mask is not None:
        key_mask = as_bool_mask(key_mask, "key_mask", k_raw.shape[:-1], q_raw,
                                "decayed_hydra_attention")
    return DecayedHydraAttentionFunction.apply(q, k, v, decay, causal=bool(causal),
                                               key_mask=key_mask, eps=eps)
