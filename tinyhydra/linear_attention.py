"""Multi-head linear attention with the elu + 1 feature map: one fused Function.

The baseline of Katharopoulos et al. (2020) that Hydra attention pushes to one head per
feature. Takes raw ``(..., L, d)`` arrays inside its Function; the causal form is cut
into chunks so that everything is a GEMM. The composed quadratic form used to test it is
:func:`tinyhydra.reference.linear_attention_reference`; the mask conventions are those of
:mod:`tinyhydra.masking`.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .masking import as_bool_mask, check_qkv, rowdot, swap_last, zero_masked_keys
from .scan import prefix_sum, reverse_prefix_sum
from .tensor import Function, Tensor, raw

__all__ = [
    "linear_attention", "FusedLinearAttention", "LINEAR_ATTENTION_EPS", "LINEAR_ATTENTION_CHUNK",
    "elu_feature_map",
]

LINEAR_ATTENTION_EPS = 1e-6  # added to the denominator phi(q_i) . z_i (Katharopoulos et al.)


def _split_heads(x, num_heads):
    """(..., L, H*dh) -> (..., H, L, dh) (a view when possible)."""
    *lead, length, features = x.shape
    return x.reshape(*lead, length, num_heads, features // num_heads).swapaxes(-3, -2)


def _merge_heads(x):
    """(..., H, L, dh) -> (..., L, H*dh)."""
    *lead, heads, length, features = x.shape
    return x.swapaxes(-3, -2).reshape(*lead, length, heads * features)


def elu_feature_map(x):
    """phi(x) = elu(x) + 1 = x + 1 for x > 0, e^x otherwise (always > 0)."""
    xp = backend.get_array_module(x)
    return xp.where(x > 0, x + 1, xp.exp(xp.minimum(x, 0)))


def _elu_feature_map_grad(phi):
    """d phi / dx from phi alone: 1 where x > 0 (phi > 1), e^x = phi where x <= 0 (phi <= 1).

    Both cases are min(phi, 1) (and both branches equal 1 at x = 0), so only phi is saved.
    """
    return backend.get_array_module(phi).minimum(phi, 1)


LINEAR_ATTENTION_CHUNK = 64  # chunk length of the causal form (see FusedLinearAttention)


def _pad_length(x, pad):
    """x (..., L, d) with ``pad`` zero rows appended along L."""
    if not pad:
        return x
    xp = backend.get_array_module(x)
    return xp.concatenate([x, xp.zeros(x.shape[:-2] + (pad, x.shape[-1]), dtype=x.dtype)], axis=-2)


def _to_chunks(x, chunk):
    """(..., n*C, d) -> (..., n, C, d)."""
    return x.reshape(x.shape[:-2] + (x.shape[-2] // chunk, chunk, x.shape[-1]))


def _from_chunks(x, length):
    """(..., n, C, d) -> (..., L, d), dropping the padding rows."""
    return x.reshape(x.shape[:-3] + (-1, x.shape[-1]))[..., :length, :]


def _over_chunks(scan, summaries):
    """``scan`` (tinyhydra.scan's prefix_sum or reverse_prefix_sum) over the chunk axis of
    (..., n, dh, dw) summaries, each (dh, dw) matrix flattened to one row of features."""
    if summaries.shape[-3] == 0:
        return summaries
    flat = summaries.reshape(summaries.shape[:-2] + (-1,))  # (..., n, dh * dw)
    return scan(flat).reshape(summaries.shape)


class FusedLinearAttention(Function):
    r"""Multi-head linear attention (Katharopoulos et al. 2020) with phi(x) = elu(x) + 1.

    Shapes: Q, K (..., L, D), V (..., L, Dv); the last axes are split into H contiguous
    heads of dh = D/H and dvh = Dv/H features, giving per head phi(Q) (..., H, L, dh),
    phi(K) (..., H, S, dh), V (..., H, S, dvh). ``key_mask`` m (..., S), True = real
    key; masked keys add nothing (their phi(k_t) and v_t rows are replaced by 0, by
    selection, so a NaN stored there cannot leak). Per head and query i::

        S_i = sum_{t in T(i)} m_t phi(k_t) v_t^T      (dh, dvh)   "state"
        z_i = sum_{t in T(i)} m_t phi(k_t)            (dh,)       "normaliser"
        num_i = phi(q_i)^T S_i                         (dvh,)
        den_i = phi(q_i) . z_i + eps                   scalar, eps = 1e-6
        out_i = num_i / den_i

    with T(i) = all t (bidirectional) or t <= i (causal).

    **Values and normaliser together.** Append a column of ones to V: V+ = [V, 1]
    (S, dvh + 1). Then S+ = sum_t phi(k_t) v+_t^T = [S, z] and phi(q_i)^T S+_i =
    [num_i, den_i - eps]: one product gives both, and the backward handles them
    together through dnum+ = [dnum, dden].

    **Bidirectional** (T(i) = all t): S+ = phi(K)^T V+ does not depend on i; two GEMMs,
    O((L + S) dh dvh) time and O(dh dvh) extra memory per head.

    **Causal** (T(i) = t <= i): S+_i is a prefix sum over t. Materialising all of them
    ((..., H, L, dh, dvh+1), a cumsum of outer products) costs O(L dh dvh) memory per
    head, so the sequence is cut into n chunks of C = 64 positions (zero-padded;
    zero rows of phi(K) add nothing) and, for chunk c with rows Q_c, K_c, V+_c::

        U_c = K_c^T V+_c                         (dh, dvh+1)  chunk summary
        P_c = sum_{c' < c} U_c'                  exclusive prefix sum over chunks (tinyhydra.scan)
        A_c = tril(Q_c K_c^T)                    (C, C)  within-chunk, t <= i
        num+_c = Q_c P_c + A_c V+_c              (C, dvh+1) = [num, den - eps]

    i.e. earlier chunks through their summed state, the own chunk quadratically.
    Memory O(L C + (L/C) dh dvh) per head, everything a GEMM.

    **Backward**, for G = dL/dout (..., H, L, dvh)::

        dnum_i = G_i / den_i,   dden_i = -G_i . num_i / den_i^2 = -(G_i . out_i) / den_i
        dnum+ = [dnum, dden]

    bidirectional (out+ = phi(Q) S+)::

        dphi(Q) = dnum+ S+^T,   dS+ = phi(Q)^T dnum+
        dphi(K) = V+ dS+^T,     dV+ = phi(K) dS+        (dV = first dvh columns)

    causal, per chunk (dA_c masked by the same tril)::

        dA_c = tril(dnum+_c V+_c^T)
        dQ_c = dnum+_c P_c^T + dA_c K_c
        dP_c = Q_c^T dnum+_c
        dU_c = sum_{c' > c} dP_c'              the adjoint of an exclusive prefix sum
                                               is an exclusive reversed prefix sum
        dK_c = dA_c^T Q_c + V+_c dU_c^T
        dV+_c = A_c^T dnum+_c + K_c dU_c

    and finally through the mask and the feature map::

        dk = m * dphi(k) * min(phi(k), 1),  dq = dphi(q) * min(phi(q), 1)

    (elu + 1 has derivative 1 for x > 0, where phi > 1, and e^x = phi for x <= 0,
    where phi <= 1: min(phi, 1) in both cases, so only phi is saved).
    """

    @staticmethod
    def forward(ctx, q, k, v, num_heads, causal=False, key_mask=None,
                eps=LINEAR_ATTENTION_EPS, chunk=LINEAR_ATTENTION_CHUNK):
        xp = backend.get_array_module(q)
        q_phi = elu_feature_map(_split_heads(q, num_heads))  # (..., H, L, dh)
        k_phi = elu_feature_map(_split_heads(k, num_heads))  # (..., H, S, dh)
        values = _split_heads(v, num_heads)  # (..., H, S, dvh)
        key_alive = None
        if key_mask is not None:
            key_alive = key_mask[..., None, :]  # (..., 1, S): shared by the H heads
            # masked keys: phi(k_t) = 0 and v_t = 0 by selection, so they contribute nothing
            k_phi = zero_masked_keys(k_phi, key_alive)
            values = zero_masked_keys(values, key_alive)
        ones = xp.ones(values.shape[:-1] + (1,), dtype=values.dtype)
        values = xp.concatenate([values, ones], axis=-1)  # V+ = [V, 1] (..., H, S, dvh+1)
        length = q_phi.shape[-2]
        if causal:
            chunk = max(1, min(chunk, length))
            pad = -length % chunk
            q_c = _to_chunks(_pad_length(q_phi, pad), chunk)  # (..., H, n, C, dh)
            k_c = _to_chunks(_pad_length(k_phi, pad), chunk)
            v_c = _to_chunks(_pad_length(values, pad), chunk)  # (..., H, n, C, dvh+1)
            lower = xp.tril(xp.ones((chunk, chunk), dtype=bool))
            scores = xp.matmul(q_c, swap_last(k_c))  # (..., H, n, C, C)
            scores *= lower  # A_c
            summaries = xp.matmul(swap_last(k_c), v_c)  # U_c (..., H, n, dh, dvh+1)
            prefix = xp.zeros_like(summaries)  # P_c = U_0 + ... + U_{c-1}
            prefix[..., 1:, :, :] = _over_chunks(prefix_sum, summaries[..., :-1, :, :])
            num = xp.matmul(q_c, prefix)
            num += xp.matmul(scores, v_c)
            num = _from_chunks(num, length)  # (..., H, L, dvh+1)
            ctx.chunk, ctx.pad, ctx.lower = chunk, pad, lower
            saved = (q_c, k_c, v_c, scores, prefix)
        else:
            state = xp.matmul(swap_last(k_phi), values)  # S+ (..., H, dh, dvh+1)
            num = xp.matmul(q_phi, state)  # (..., H, L, dvh+1)
            saved = (q_phi, k_phi, values, state)
        den = num[..., -1:] + eps  # (..., H, L, 1)
        out = num[..., :-1] / den  # (..., H, L, dvh)
        ctx.causal = causal
        ctx.key_alive = key_alive
        ctx.save_for_backward(den, out, *saved)
        return _merge_heads(out)

    @staticmethod
    def backward(ctx, g):
        den, out, *saved = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        xp = backend.get_array_module(g)
        g = _split_heads(g, out.shape[-3])  # (..., H, L, dvh)
        d_den = rowdot(g, out)
        d_den /= den
        d_den *= -1  # (..., H, L, 1)
        d_aug = xp.concatenate([g / den, d_den], axis=-1)  # dnum+ (..., H, L, dvh+1)
        length = out.shape[-2]
        grad_q = grad_k = grad_v = None
        if ctx.causal:
            q_c, k_c, v_c, scores, prefix = saved
            d_c = _to_chunks(_pad_length(d_aug, ctx.pad), ctx.chunk)  # (..., H, n, C, dvh+1)
            if need_q or need_k:
                d_scores = xp.matmul(d_c, swap_last(v_c))  # (..., H, n, C, C)
                d_scores *= ctx.lower  # dA_c
            if need_k or need_v:
                d_prefix = xp.matmul(swap_last(q_c), d_c)  # dP_c (..., H, n, dh, dvh+1)
                d_summaries = xp.zeros_like(d_prefix)  # dU_c = dP_{c+1} + ... + dP_{n-1}
                d_summaries[..., :-1, :, :] = _over_chunks(reverse_prefix_sum, d_prefix[..., 1:, :, :])
            if need_q:
                d_q_phi = xp.matmul(d_c, swap_last(prefix))
                d_q_phi += xp.matmul(d_scores, k_c)
                d_q_phi = _from_chunks(d_q_phi, length)
            if need_k:
                d_k_phi = xp.matmul(swap_last(d_scores), q_c)
                d_k_phi += xp.matmul(v_c, swap_last(d_summaries))
                d_k_phi = _from_chunks(d_k_phi, length)
            if need_v:
                grad_v = xp.matmul(swap_last(scores), d_c)
                grad_v += xp.matmul(k_c, d_summaries)
                grad_v = _from_chunks(grad_v, length)[..., :-1]
            q_phi, k_phi = _from_chunks(q_c, length), _from_chunks(k_c, length)
        else:
            q_phi, k_phi, values, state = saved
            if need_q:
                d_q_phi = xp.matmul(d_aug, swap_last(state))  # (..., H, L, dh)
            if need_k or need_v:
                d_state = xp.matmul(swap_last(q_phi), d_aug)  # dS+ (..., H, dh, dvh+1)
            if need_k:
                d_k_phi = xp.matmul(values, swap_last(d_state))
            if need_v:
                grad_v = xp.matmul(k_phi, d_state[..., :-1])
        if need_q:
            d_q_phi *= _elu_feature_map_grad(q_phi)
            grad_q = _merge_heads(d_q_phi)
        if need_k:
            # the mask m_t of dphi(k_t), again by selection
            d_k_phi *= _elu_feature_map_grad(k_phi)
            d_k_phi = zero_masked_keys(d_k_phi, ctx.key_alive)
            grad_k = _merge_heads(d_k_phi)
        if need_v:
            grad_v = _merge_heads(grad_v)
        return grad_q, grad_k, grad_v


def linear_attention(q, k, v, num_heads, causal=False, key_mask=None) -> Tensor:
    """Multi-head elu+1 linear attention. See :class:`FusedLinearAttention`.

    q, k (..., L, D), v (..., L, Dv) Tensors with D and Dv divisible by ``num_heads``
    (contiguous heads of D/num_heads features); ``key_mask`` bool (..., L), True = real
    token; ``causal`` restricts query i to keys t <= i. Output (..., L, Dv).
    """
    q_raw, k_raw, v_raw = raw(q), raw(k), raw(v)
    check_qkv("linear_attention", q_raw, k_raw, v_raw, same_length=causal)
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)):
        raise TypeError(f"linear_attention: num_heads must be an int, got {num_heads!r}")
    if num_heads < 1:
        raise ValueError(f"linear_attention: num_heads must be >= 1, got {num_heads}")
    for name, array in (("q/k", q_raw), ("v", v_raw)):
        if array.shape[-1] % num_heads:
            raise ValueError(
                f"linear_attention: num_heads={num_heads} does not divide the feature "
                f"dimension {array.shape[-1]} of {name} (shape {array.shape})"
            )
    if key_mask is not None:
        key_mask = as_bool_mask(key_mask, "key_mask", k_raw.shape[:-1], q_raw, "linear_attention")
    return FusedLinearAttention.apply(q, k, v, num_heads=int(num_heads), causal=bool(causal),
                                 key_mask=key_mask)
