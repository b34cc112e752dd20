"""Multi-head linear attention with the elu + 1 feature map: one fused Function.

The baseline of Katharopoulos et al. (2020) that Hydra attention pushes to one head per
feature. Takes raw ``(..., L, d)`` arrays inside its Function; the causal form is cut
into chunks so that everything is a GEMM. The composed quadratic form used to test it is
:func:`tinyhydra.attention.reference.linear_attention_reference`; the mask conventions are those of
:mod:`tinyhydra.attention.masking`.
"""
from __future__ import annotations

from ..engine import backend
from ..engine.tensor import Function, Tensor, raw
from .masking import (
    as_bool_mask,
    check_flag,
    check_num_heads,
    check_qkv,
    merge_heads,
    rowdot,
    split_heads,
    zero_masked_keys,
)
from .scan import linear_product, linear_product_backward

__all__ = [
    "linear_attention", "FusedLinearAttention", "LINEAR_ATTENTION_EPS", "LINEAR_ATTENTION_CHUNK",
    "elu_feature_map",
]

LINEAR_ATTENTION_EPS = 1e-6  # added to the denominator phi(q_i) . z_i (Katharopoulos et al.)


def elu_feature_map(x):
    """phi(x) = elu(x) + 1 = x + 1 for x > 0, e^x otherwise (always > 0)."""
    xp = backend.get_array_module(x)
    return xp.where(x > 0, x + 1, xp.exp(xp.minimum(x, 0)))


def _elu_feature_map_grad(phi):
    """d phi / dx from phi alone: 1 where x > 0 (phi > 1), e^x = phi where x <= 0 (phi <= 1).

    Both cases are min(phi, 1) (and both branches equal 1 at x = 0), so only phi is saved.
    """
    return backend.get_array_module(phi).minimum(phi, 1)


LINEAR_ATTENTION_CHUNK = 64  # chunk length of the causal form (see tinyhydra.attention.scan.linear_product)


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

    **The product** num+_i = sum_{t in T(i)} (phi(q_i) . phi(k_t)) v+_t and its backward
    are :func:`tinyhydra.attention.scan.linear_product` (bidirectional: S+ = phi(K)^T V+, two GEMMs;
    causal: chunks of C = 64 positions, earlier chunks through their summed state, the
    own chunk quadratically), per head.

    **Backward**, for G = dL/dout (..., H, L, dvh)::

        dnum_i = G_i / den_i,   dden_i = -G_i . num_i / den_i^2 = -(G_i . out_i) / den_i
        dnum+ = [dnum, dden]

    then :func:`tinyhydra.attention.scan.linear_product_backward` gives dphi(Q), dphi(K), dV+
    (dV = its first dvh columns),
    and finally through the mask and the feature map::

        dk = m * dphi(k) * min(phi(k), 1),  dq = dphi(q) * min(phi(q), 1)

    (elu + 1 has derivative 1 for x > 0, where phi > 1, and e^x = phi for x <= 0,
    where phi <= 1: min(phi, 1) in both cases, so only phi is saved).
    """

    @staticmethod
    def forward(ctx, q, k, v, num_heads, causal=False, key_mask=None,
                eps=LINEAR_ATTENTION_EPS, chunk=LINEAR_ATTENTION_CHUNK):
        xp = backend.get_array_module(q)
        q_phi = elu_feature_map(split_heads(q, num_heads))  # (..., H, L, dh)
        k_phi = elu_feature_map(split_heads(k, num_heads))  # (..., H, S, dh)
        values = split_heads(v, num_heads)  # (..., H, S, dvh)
        key_alive = None
        if key_mask is not None:
            key_alive = key_mask[..., None, :]  # (..., 1, S): shared by the H heads
            # masked keys: phi(k_t) = 0 and v_t = 0 by selection, so they contribute nothing
            k_phi = zero_masked_keys(k_phi, key_alive)
            values = zero_masked_keys(values, key_alive)
        ones = xp.ones(values.shape[:-1] + (1,), dtype=values.dtype)
        values = xp.concatenate([values, ones], axis=-1)  # V+ = [V, 1] (..., H, S, dvh+1)
        num, product = linear_product(q_phi, k_phi, values, causal, chunk)  # (..., H, L, dvh+1)
        den = num[..., -1:] + eps  # (..., H, L, 1)
        out = num[..., :-1] / den  # (..., H, L, dvh)
        ctx.key_alive, ctx.product = key_alive, product
        ctx.save_for_backward(den, out, q_phi, k_phi)
        return merge_heads(out)

    @staticmethod
    def backward(ctx, g):
        den, out, q_phi, k_phi = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        xp = backend.get_array_module(g)
        g = split_heads(g, out.shape[-3])  # (..., H, L, dvh)
        d_den = rowdot(g, out)
        d_den /= den
        d_den *= -1  # (..., H, L, 1)
        d_aug = xp.concatenate([g / den, d_den], axis=-1)  # dnum+ (..., H, L, dvh+1)
        d_q_phi, d_k_phi, grad_v = linear_product_backward(ctx.product, d_aug, need_q, need_k,
                                                           need_v)
        grad_q = grad_k = None
        if need_q:
            d_q_phi *= _elu_feature_map_grad(q_phi)
            grad_q = merge_heads(d_q_phi)
        if need_k:
            # the mask m_t of dphi(k_t), again by selection
            d_k_phi *= _elu_feature_map_grad(k_phi)
            d_k_phi = zero_masked_keys(d_k_phi, ctx.key_alive)
            grad_k = merge_heads(d_k_phi)
        if need_v:
            grad_v = merge_heads(grad_v[..., :-1])
        return grad_q, grad_k, grad_v


def linear_attention(q, k, v, num_heads, *, causal=False, key_mask=None) -> Tensor:
    """Multi-head elu+1 linear attention. See :class:`FusedLinearAttention`.

    q, k (..., L, D), v (..., L, Dv) Tensors with D and Dv divisible by ``num_heads``
    (contiguous heads of D/num_heads features); ``key_mask`` bool (..., L), True = real
    token; ``causal`` restricts query i to keys t <= i. Output (..., L, Dv).
    """
    q_raw, k_raw, v_raw = raw(q), raw(k), raw(v)
    check_flag("linear_attention", "causal", causal)
    check_qkv("linear_attention", q_raw, k_raw, v_raw, same_length=causal)
    check_num_heads("linear_attention", num_heads, q_raw, v_raw)
    if key_mask is not None:
        key_mask = as_bool_mask(key_mask, "key_mask", k_raw.shape[:-1], q_raw, "linear_attention")
    return FusedLinearAttention.apply(q, k, v, num_heads=int(num_heads), causal=bool(causal),
                                 key_mask=key_mask)
