r"""Hydra attention (Bolya et al. 2022), as used by HydraRec: one fused Function.

Hydra attention is multi-head linear attention pushed to its limit: as many heads
as features (H = D, one feature per head) and the cosine-similarity kernel
phi(x) = x / ||x||. With a single feature per head, each head's "attention matrix"
A_f[i, t] = phi(q_i)_f phi(k_t)_f factorises, so the whole layer is

    bidirectional:  out_i = phi(q_i) * sum_t     m_t phi(k_t) * v_t
    causal:         out_i = phi(q_i) * sum_{t<=i} m_t phi(k_t) * v_t

(* is the elementwise product over the D features, m_t the key mask). That costs
O(L D) time and memory instead of softmax attention's O(L^2 D) / O(L^2): the L x L
matrices A_f are never built. :func:`tinyhydra.attention.reference.hydra_attention_reference`
builds them explicitly (a (..., D, L, L) tensor) to check this module.

Unlike Katharopoulos-style linear attention there is no normaliser
phi(q_i) . z_i in the denominator: the cosine kernel already bounds every term.

**Fewer heads.** ``num_heads=H`` (H dividing D) gives multi-head cosine linear attention
with Hydra as its H = D end: the D features split into H contiguous heads of dh = D/H, and

    out_i^h = sum_{t in T(i)} m_t (phi(q_i)^h . phi(k_t)^h) v_t^h        (dh features each)

(:class:`FusedMultiHeadHydraAttention`: O(L D dh) = O(L D^2 / H) time bidirectional,
O(L D (dh + C)) causal with chunks of C = 16 positions). H = 1 is single-head
cosine linear attention; H = D is the elementwise form above. ``num_heads=None`` (the
default) is H = D through :class:`FusedHydraAttention`, the op unchanged.

Where the cosine normalisation happens (``normalize``):

* ``"global"`` (the default): phi normalises each vector over all D features, then D splits
  into heads, as Hydra does at H = D (Bolya et al. 2022, and the code in their appendix:
  ``q / q.norm(dim=-1)`` on the whole vector). Then sum_h ||phi(q)^h||^2 = 1 and each head's
  score phi(q)^h . phi(k)^h is a part of one cosine similarity.
* ``"per_head"``: phi normalises each head's dh features on their own, the usual way to put a
  kernel into multi-head attention (each head a cosine similarity of its own). At H = D this
  is phi(x) = sign(x), whose gradient is 0: it is not Hydra there.

The Hydra paper gives code only for the H = D form; its head-count figure (cosine-kernel
multi-head attention, H from 1 to D) reaches H = D, where the per-head form would pass
no gradient to q and k. Both forms are offered so that the difference can be measured.
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
from .scan import linear_product, linear_product_backward, prefix_sum, reverse_prefix_sum

__all__ = [
    "hydra_attention", "FusedHydraAttention", "HYDRA_EPS", "cosine_feature_map",
    "cosine_feature_map_backward", "FusedMultiHeadHydraAttention", "NORMALIZE", "MULTIHEAD_CHUNK",
]

# Floor on ||x|| in phi(x) = x / max(||x||, eps), as torch.nn.functional.normalize.
# 1e-12 is representable in float32 too (smallest normal ~1.2e-38), so the same eps
# serves both dtypes; it only matters for (near-)zero vectors, which map to ~0.
HYDRA_EPS = 1e-12
NORMALIZE = ("global", "per_head")  # where phi normalises: over all D features, or per head
MULTIHEAD_CHUNK = 16  # causal multi-head chunk length; 8-64 measured at (128, 200, 50), 16 fastest or near it


def cosine_feature_map(x, eps=HYDRA_EPS):
    """Hydra's feature map on a raw array: phi(x) = x / n, n = max(||x||_2, eps) over the
    last axis (phi(q) . phi(k) is the cosine similarity of q and k).

    Returns (y, n, above): y (..., D), n (..., 1) the clamped norm and ``above`` (..., 1)
    bool ||x|| > eps, which is all the backward (:func:`cosine_feature_map_backward`) needs.
    A float16 x is normalised in float32, as LayerNorm does (its squared norm overflows
    float16 from |x| around 256 / sqrt(D)); y is cast back, n stays float32.
    """
    xp = backend.get_array_module(x)
    wide = backend.at_least_float32(x)
    norm = xp.sqrt(rowdot(wide, wide))
    above = norm > eps
    norm = xp.maximum(norm, xp.asarray(eps, dtype=wide.dtype))
    return (x / norm if wide is x else (wide / norm).astype(x.dtype)), norm, above


def cosine_feature_map_backward(y, norm, above, grad_y):
    r"""dL/dx for y = x / n, n = max(||x||, eps), given dL/dy.

    Where ||x|| > eps: dy/dx = (I - y y^T) / n (the projection removing the radial
    direction, divided by the length), so dx = (dy - y (y . dy)) / n. Where the norm
    is clamped, n = eps is a constant and dx = dy / eps.
    """
    xp = backend.get_array_module(y)
    radial = rowdot(y, grad_y)  # (..., 1)
    radial *= above
    grad_x = y * radial
    xp.subtract(grad_y, grad_x, out=grad_x)
    grad_x /= norm
    return grad_x


class FusedHydraAttention(Function):
    r"""Fused Hydra attention: out = phi(Q) * KV, O(L D) memory, hand-written backward.

    Shapes: Q (..., Lq, D), K and V (..., L, D) (Lq = L when causal); key mask m
    (..., L) broadcastable to K's leading axes. Writing q^ = phi(Q), k^ = m phi(K),
    forward::

        kv   = sum_t k^_t * v_t              (..., 1, D)   bidirectional
        kv_i = sum_{t<=i} k^_t * v_t         (..., L, D)   causal: a cumsum over t
        out_i = q^_i * kv_i                  (..., Lq, D)

    Backward, for G = dL/dout (..., Lq, D)::

        dq^_i  = G_i * kv_i
        dkv    = sum_i G_i * q^_i                     bidirectional
        dkv'_t = sum_{i>=t} G_i * q^_i                causal: the adjoint of a prefix
                                                      sum is a reversed prefix sum
        dv_t   = dkv'_t * k^_t                        (0 for masked keys)
        dk^_t  = m_t dkv'_t * v_t
        dQ, dK = normalisation backward of dq^, dk^:  dx = (dy - y (y . dy)) / n

    (:func:`cosine_feature_map_backward`). Masked keys are removed by *selection*
    before anything else: their k and v rows are replaced by 0 (``xp.where``, not a
    product, so a NaN or inf stored at a padded position cannot leak through 0 * NaN).
    Then k^_t = phi(0) = 0 and v_t = 0, so the forward is the formula above, and the
    backward gives dv_t = dkv'_t * 0 = 0 and dk^_t = dkv'_t * 0 = 0 with no mask
    factor left to apply. Every array is (..., L, D) or smaller, so memory is O(L D):
    at L = 4096 it never comes close to one L x L matrix.
    """

    @staticmethod
    def forward(ctx, q, k, v, causal=False, key_mask=None, eps=HYDRA_EPS):
        k, v = zero_masked_keys(k, key_mask), zero_masked_keys(v, key_mask)
        q_hat, q_norm, q_above = cosine_feature_map(q, eps)
        k_hat, k_norm, k_above = cosine_feature_map(k, eps)  # k^ = 0 at masked keys
        kv = k_hat * v  # (..., L, D)
        if causal:
            kv = prefix_sum(kv)  # (..., L, D) the cumsum over t (tinyhydra.attention.scan)
        else:
            kv = kv.sum(axis=-2, keepdims=True)  # (..., 1, D)
        ctx.causal = causal
        ctx.save_for_backward(q_hat, q_norm, q_above, k_hat, k_norm, k_above, v, kv)
        return q_hat * kv

    @staticmethod
    def backward(ctx, g):
        q_hat, q_norm, q_above, k_hat, k_norm, k_above, v, kv = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        grad_q = grad_k = grad_v = None
        if need_q:
            grad_q = cosine_feature_map_backward(q_hat, q_norm, q_above, g * kv)
        if need_k or need_v:
            d_kv = g * q_hat
            if ctx.causal:
                d_kv = reverse_prefix_sum(d_kv)  # (..., L, D)
            else:
                d_kv = d_kv.sum(axis=-2, keepdims=True)  # (..., 1, D)
            if need_v:
                grad_v = d_kv * k_hat
            if need_k:
                grad_k = cosine_feature_map_backward(k_hat, k_norm, k_above, d_kv * v)
        return grad_q, grad_k, grad_v


class FusedMultiHeadHydraAttention(Function):
    r"""Multi-head cosine linear attention, H heads of dh = D/H features, hand-written backward.

    Shapes: Q (..., Lq, D), K and V (..., L, D) (Lq = L when causal), key mask m (..., L).
    Masked keys are selected away first (k_t = v_t = 0, as in :class:`FusedHydraAttention`).
    With q^, k^ the cosine feature maps (over all D features, or per head for
    ``normalize="per_head"``) and the superscript h a head's dh features, forward::

        out_i^h = sum_{t in T(i)} (q^_i^h . k^_t^h) v_t^h       T(i) = every t, or t <= i

    which :func:`tinyhydra.attention.scan.linear_product` computes on (..., H, L, dh) arrays:
    bidirectional through the state S^h = k^^hT v^h (dh, dh); causal in chunks of C
    positions, earlier chunks through their summed state and the own chunk quadratically.
    Time O(L D (dh + C)) causal, O(L D dh) bidirectional; memory O(L (D + C H) + (L / C) D dh).

    Backward, for G = dL/dout: :func:`tinyhydra.attention.scan.linear_product_backward` gives dq^, dk^
    and dV per head (for "every t": dq^ = G S^T, dS = q^^T G, dk^ = V dS^T, dV = k^ dS), then
    the heads merge and the normalisation backward of :func:`cosine_feature_map_backward`
    gives dQ and dK (per head for ``"per_head"``). At H = D this is Hydra, in O(L D C) time
    instead of O(L D): ``hydra_attention`` sends H = D to :class:`FusedHydraAttention`.
    """

    @staticmethod
    def forward(ctx, q, k, v, num_heads, causal=False, key_mask=None, eps=HYDRA_EPS,
                normalize="global", chunk=MULTIHEAD_CHUNK):
        k, v = zero_masked_keys(k, key_mask), zero_masked_keys(v, key_mask)
        per_head = normalize == "per_head"
        if per_head:  # normalise each head's features: phi on (..., H, L, dh)
            q, k = split_heads(q, num_heads), split_heads(k, num_heads)
        q_hat, q_norm, q_above = cosine_feature_map(q, eps)
        k_hat, k_norm, k_above = cosine_feature_map(k, eps)  # 0 at masked keys
        ctx.per_head, ctx.num_heads = per_head, num_heads
        ctx.save_for_backward(q_hat, q_norm, q_above, k_hat, k_norm, k_above)
        if not per_head:
            q_hat, k_hat = split_heads(q_hat, num_heads), split_heads(k_hat, num_heads)
        out, ctx.product = linear_product(q_hat, k_hat, split_heads(v, num_heads), causal, chunk)
        return merge_heads(out)  # (..., H, Lq, dh) -> (..., Lq, D)

    @staticmethod
    def backward(ctx, g):
        q_hat, q_norm, q_above, k_hat, k_norm, k_above = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        d_q_hat, d_k_hat, grad_v = linear_product_backward(
            ctx.product, split_heads(g, ctx.num_heads), need_q, need_k, need_v)
        grads = []
        for d_hat, saved in ((d_q_hat, (q_hat, q_norm, q_above)), (d_k_hat, (k_hat, k_norm, k_above))):
            if d_hat is None:
                grads.append(None)
            elif ctx.per_head:
                grads.append(merge_heads(cosine_feature_map_backward(*saved, d_hat)))
            else:
                grads.append(cosine_feature_map_backward(*saved, merge_heads(d_hat)))
        return grads[0], grads[1], None if grad_v is None else merge_heads(grad_v)


def hydra_attention(q, k, v, *, causal=False, key_mask=None, eps=HYDRA_EPS, num_heads=None,
                    normalize="global") -> Tensor:
    """Hydra attention with phi(x) = x / max(||x||_2, eps). See :class:`FusedHydraAttention`.

    q, k, v (..., L, D) Tensors (q may have another length when not causal);
    ``key_mask`` bool (..., L) array or Tensor, True = real token (masked keys add
    nothing); ``causal`` restricts query i to keys t <= i. Output (..., L, D).
    ``num_heads`` None (H = D, Hydra) or an int H dividing D: multi-head cosine linear
    attention with heads of D/H features (:class:`FusedMultiHeadHydraAttention`);
    ``normalize`` "global" (phi over all D features, then the split) or "per_head".
    """
    q_raw, k_raw, v_raw = raw(q), raw(k), raw(v)
    check_flag("hydra_attention", "causal", causal)
    check_qkv("hydra_attention", q_raw, k_raw, v_raw, same_length=causal, same_value_dim=True)
    if normalize not in NORMALIZE:
        raise ValueError(f"hydra_attention: normalize must be one of {NORMALIZE}, got {normalize!r}")
    if num_heads is not None:
        check_num_heads("hydra_attention", num_heads, q_raw)
    if key_mask is not None:
        key_mask = as_bool_mask(key_mask, "key_mask", k_raw.shape[:-1], q_raw, "hydra_attention")
    options = {"causal": bool(causal), "key_mask": key_mask, "eps": eps}
    num_heads = q_raw.shape[-1] if num_heads is None else num_heads
    if num_heads == q_raw.shape[-1] and normalize == "global":
        return FusedHydraAttention.apply(q, k, v, **options)  # H = D: the elementwise form
    return FusedMultiHeadHydraAttention.apply(q, k, v, num_heads=int(num_heads),
                                              normalize=normalize, **options)
