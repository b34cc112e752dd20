"""Softmax attention, O = softmax(Q K^T / sqrt(d), masked) V: one fused Function.

Takes raw ``(..., L, d)`` arrays inside its Function and never loops in Python over
batch, heads or sequence. The composed quadratic form used to test it is
:func:`tinyhydra.attention.reference.softmax_attention_reference`; the mask conventions are
those of :mod:`tinyhydra.attention.masking`.
"""
from __future__ import annotations

import math

import numpy as np

from ..engine import backend
from ..engine.tensor import Function, Tensor, raw
from .masking import as_bool_mask, check_qkv, rowdot, swap_last, zero_masked_keys

__all__ = ["softmax_attention", "SoftmaxAttention"]


class SoftmaxAttention(Function):
    r"""Scaled dot-product attention, O = softmax(Q K^T / sqrt(d), masked) V.

    Shapes: Q (..., L, d), K (..., S, d), V (..., S, dv), mask broadcastable to
    (..., L, S) with True = may attend. Output O (..., L, dv).

    Forward (c = 1/sqrt(d))::

        S_ij = c q_i . k_j                              (..., L, S)  one GEMM
        P_ij = m_ij e^{S_ij - M_i} / sum_j' m_ij' e^{S_ij' - M_i}
               (M_i = max over allowed j; a row with no allowed key gets P_i = 0)
        O    = P V                                      (..., L, dv) one GEMM

    Masked scores are set to -inf *before* the exponential, so e^{-inf} = 0 exactly
    and no overflow can reach a masked entry; a fully masked row has max -inf, which
    is replaced by 0, its exponentials are all 0 and its denominator is replaced by 1,
    so P_i = 0 and O_i = 0 without any NaN. Keys that no query may attend (padding)
    have their k and v rows replaced by 0 first, by selection, so that a NaN or inf
    stored there cannot leak through 0 * NaN in the GEMMs.

    Backward, for G = dL/dO (..., L, dv)::

        dV = P^T G                                        (..., S, dv)
        dP = G V^T                                        (..., L, S)
        dS_ij = P_ij (dP_ij - delta_i),  delta_i = sum_j P_ij dP_ij = G_i . O_i
        dQ = c dS K,   dK = c dS^T Q

    (the softmax Jacobian is diag(p) - p p^T per row; delta_i uses
    sum_j P_ij (G_i . v_j) = G_i . (sum_j P_ij v_j) = G_i . O_i, an O(L dv) shortcut
    instead of an O(L S) reduction). Masked entries have P_ij = 0, hence dS_ij = 0, so
    masked keys get no gradient and fully masked rows pass 0 to q. Memory: one
    (..., L, S) array P is saved; the backward builds one more (dP, reused as dS).
    """

    @staticmethod
    def forward(ctx, q, k, v, mask=None):
        xp = backend.get_array_module(q)
        if mask is not None:
            # keys no query may attend (padding) are zeroed by selection: 0 * NaN = NaN
            # in the GEMMs below would otherwise spread a NaN stored there
            alive = mask.any(axis=-2) if mask.ndim > 1 else mask  # (..., S)
            k, v = zero_masked_keys(k, alive), zero_masked_keys(v, alive)
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = xp.matmul(q, swap_last(k))  # (..., L, S)
        scores *= scale
        if mask is not None:
            neg_inf = xp.asarray(-np.inf, dtype=scores.dtype)
            if mask.shape != scores.shape:
                mask = xp.broadcast_to(mask, scores.shape)
            xp.copyto(scores, neg_inf, where=~mask)
            row_max = scores.max(axis=-1, keepdims=True)  # -inf on fully masked rows
            row_max = xp.where(xp.isfinite(row_max), row_max, xp.zeros((), dtype=scores.dtype))
        else:
            row_max = scores.max(axis=-1, keepdims=True)
        scores -= row_max
        probs = xp.exp(scores, out=scores)  # masked entries: e^-inf = 0
        denom = probs.sum(axis=-1, keepdims=True)
        if mask is not None:
            denom = xp.where(denom > 0, denom, xp.ones((), dtype=denom.dtype))
        probs /= denom
        out = xp.matmul(probs, v)  # (..., L, dv)
        ctx.scale = scale
        ctx.save_for_backward(q, k, v, probs, out)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, probs, out = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        xp = backend.get_array_module(g)
        grad_v = xp.matmul(swap_last(probs), g) if need_v else None
        grad_q = grad_k = None
        if need_q or need_k:
            d_scores = xp.matmul(g, swap_last(v))  # dP (..., L, S)
            d_scores -= rowdot(g, out)  # dP - delta
            d_scores *= probs
            d_scores *= ctx.scale  # dS, already including c
            if need_q:
                grad_q = xp.matmul(d_scores, k)
            if need_k:
                grad_k = xp.matmul(swap_last(d_scores), q)
        return grad_q, grad_k, grad_v


def softmax_attention(q, k, v, *, mask=None) -> Tensor:
    """softmax(q k^T / sqrt(d), masked) v. See :class:`SoftmaxAttention`.

    q (..., L, d), k (..., S, d), v (..., S, dv) Tensors; ``mask`` a bool array or Tensor
    broadcastable to (..., L, S), True = may attend (e.g. ``causal_mask(L)`` for a
    causal encoder, or a key-padding mask of shape (B, 1, 1, S)). Rows with no allowed
    key output 0.
    """
    q_raw, k_raw, v_raw = raw(q), raw(k), raw(v)
    check_qkv("softmax_attention", q_raw, k_raw, v_raw)
    if mask is not None:
        target = q_raw.shape[:-1] + (k_raw.shape[-2],)
        mask = as_bool_mask(mask, "mask", target, q_raw, "softmax_attention")
    return SoftmaxAttention.apply(q, k, v, mask=mask)
