"""Softmax attention and linear (elu + 1) attention, each ONE fused Function.

Both take raw ``(..., L, d)`` arrays inside their Function and never loop in Python
over batch, heads or sequence. The quadratic, autograd-composed forms used to test
them live in :mod:`tinyhydra.reference`; Hydra attention lives in :mod:`tinyhydra.hydra`.

Conventions shared with :mod:`tinyhydra.hydra`:

* masks are bool, ``True`` = "may attend" / "real token"; a mask may be a NumPy or
  CuPy array or a bool :class:`~tinyhydra.tensor.Tensor`, and is moved to the device
  of ``q`` if needed (:func:`as_bool_mask`);
* a query with nothing to attend to outputs 0 and passes 0 gradient, never NaN;
* outputs and gradients keep the input dtype (float32 stays float32).
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .tensor import Function, Tensor

__all__ = [
    "softmax_attention", "linear_attention", "SoftmaxAttention", "LinearAttention",
    "LINEAR_ATTENTION_EPS", "LINEAR_ATTENTION_CHUNK", "as_bool_mask", "reverse_cumsum",
    "causal_mask",
]

LINEAR_ATTENTION_EPS = 1e-6  # added to the denominator phi(q_i) . z_i (Katharopoulos et al.)


# ---------------------------------------------------------------------------- helpers
def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _check_float(name, array):
    if not hasattr(array, "dtype") or array.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point Tensor or array, got "
            f"{getattr(array, 'dtype', type(array).__name__)}"
        )


def check_qkv(fn_name, q, k, v, same_length=False, same_value_dim=False):
    """Validate attention inputs q (..., L, d), k (..., S, d), v (..., S, dv).

    Leading (batch/head) axes must be equal; ``same_length`` also asks L == S (causal
    attention, where query i and key i are the same position); ``same_value_dim`` asks
    v's last axis to equal d (Hydra's elementwise products).
    """
    for name, array in (("q", q), ("k", k), ("v", v)):
        _check_float(f"{fn_name}: {name}", array)
        if array.ndim < 2:
            raise ValueError(
                f"{fn_name}: {name} must have shape (..., length, features), got {array.shape}"
            )
    shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"{fn_name}: q, k and v must share their leading axes; got {shapes}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{fn_name}: q and k must have the same feature dimension (last axis); got {shapes}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{fn_name}: k and v must have the same length (second-to-last axis); got {shapes}"
        )
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"{fn_name}: causal attention needs q and k of the same length; got {shapes}"
        )
    if same_value_dim and v.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"{fn_name}: q, k and v must have the same feature dimension; got {shapes}"
        )


def as_bool_mask(mask, name, target_shape, like, fn_name):
    """``mask`` as a bool array on the device of ``like``, broadcastable to ``target_shape``.

    Accepts a NumPy/CuPy array, a bool Tensor, or nested lists. A mask on the other
    device than ``like`` is copied there once (``backend.to_device``). The mask is
    returned un-broadcast (it may be much smaller than ``target_shape``).
    """
    mask = _raw(mask)
    if not hasattr(mask, "dtype"):
        mask = np.asarray(mask)
    device = backend.device_of(like)
    if backend.device_of(mask) != device:
        mask = backend.to_device(mask, device)
    if mask.dtype != np.bool_:
        raise ValueError(
            f"{fn_name}: {name} must be a bool array (True = attend / real token), got dtype "
            f"{mask.dtype} with shape {mask.shape}"
        )
    target_shape = tuple(target_shape)
    try:
        broadcast = np.broadcast_shapes(mask.shape, target_shape)
    except ValueError:
        broadcast = None
    if broadcast != target_shape:
        raise ValueError(
            f"{fn_name}: {name} of shape {mask.shape} does not broadcast to {target_shape}"
        )
    return mask


def reverse_cumsum(x, axis):
    """r_t = sum_{i >= t} x_i along ``axis``: the adjoint (backward) of a prefix sum.

    If y = cumsum(x) (y_i = sum_{t <= i} x_t) then dL/dx_t = sum_{i >= t} dL/dy_i,
    computed as flip -> cumsum -> flip (flips are views, no copies).
    """
    xp = backend.get_array_module(x)
    return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)


def causal_mask(length, like=None):
    """Bool (L, L) lower-triangular mask: query i may attend to keys t <= i."""
    xp = np if like is None else backend.get_array_module(_raw(like))
    return xp.tril(xp.ones((length, length), dtype=bool))


def _swap(x):
    return x.swapaxes(-1, -2)


def _rowdot(a, b):
    """sum over the last axis of a * b, keeping it: (..., n) x (..., n) -> (..., 1)."""
    xp = backend.get_array_module(a)
    return xp.einsum("...i,...i->...", a, b)[..., None]


# ------------------------------------------------------------------ softmax attention
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
    so P_i = 0 and O_i = 0 without any NaN.

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
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = xp.matmul(q, _swap(k))  # (..., L, S)
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
        grad_v = xp.matmul(_swap(probs), g) if need_v else None
        grad_q = grad_k = None
        if need_q or need_k:
            d_scores = xp.matmul(g, _swap(v))  # dP (..., L, S)
            d_scores -= _rowdot(g, out)  # dP - delta
            d_scores *= probs
            d_scores *= ctx.scale  # dS, already including c
            if need_q:
                grad_q = xp.matmul(d_scores, k)
            if need_k:
                grad_k = xp.matmul(_swap(d_scores), q)
        return grad_q, grad_k, grad_v


def softmax_attention(q, k, v, mask=None) -> Tensor:
    """softmax(q k^T / sqrt(d), masked) v. See :class:`SoftmaxAttention`.

    q (..., L, d), k (..., S, d), v (..., S, dv) Tensors; ``mask`` a bool array or Tensor
    broadcastable to (..., L, S), True = may attend (e.g. ``causal_mask(L)`` for a
    causal encoder, or a key-padding mask of shape (B, 1, 1, S)). Rows with no allowed
    key output 0.
    """
    q_raw, k_raw, v_raw = _raw(q), _raw(k), _raw(v)
    check_qkv("softmax_attention", q_raw, k_raw, v_raw)
    if mask is not None:
        target = q_raw.shape[:-1] + (k_raw.shape[-2],)
        mask = as_bool_mask(mask, "mask", target, q_raw, "softmax_attention")
    return SoftmaxAttention.apply(q, k, v, mask=mask)


# ------------------------------------------------------------------- linear attention
def _split_heads(x, num_heads):
    """(..., L, H*dh) -> (..., H, L, dh) (a view when possible)."""
    *lead, length, features = x.shape
    return x.reshape(*lead, length, num_heads, features // num_heads).swapaxes(-3, -2)


def _merge_heads(x):
    """(..., H, L, dh) -> (..., L, H*dh)."""
    *lead, heads, length, features = x.shape
    return x.swapaxes(-3, -2).reshape(*lead, length, heads * features)


def _elu_plus_one(x):
    """phi(x) = elu(x) + 1 = x + 1 for x > 0, e^x otherwise (always > 0)."""
    xp = backend.get_array_module(x)
    return xp.where(x > 0, x + 1, xp.exp(xp.minimum(x, 0)))


def _elu_plus_one_grad(phi):
    """d phi / dx from phi alone: 1 where x > 0 (phi > 1), e^x = phi where x <= 0 (phi <= 1).

    Both cases are min(phi, 1) (and both branches equal 1 at x = 0), so only phi is saved.
    """
    return backend.get_array_module(phi).minimum(phi, 1)


LINEAR_ATTENTION_CHUNK = 64  # chunk length of the causal form (see LinearAttention)


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


class LinearAttention(Function):
    r"""Multi-head linear attention (Katharopoulos et al. 2020) with phi(x) = elu(x) + 1.

    Shapes: Q, K (..., L, D), V (..., L, Dv); the last axes are split into H contiguous
    heads of dh = D/H and dvh = Dv/H features, giving per head phi(Q) (..., H, L, dh),
    phi(K) (..., H, S, dh), V (..., H, S, dvh). ``key_mask`` m (..., S), True = real
    key; masked keys add nothing (their phi(k_t) is zeroed). Per head and query i::

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
    head, and numpy's cumsum along a strided axis is ~35x slower than an add of the same
    size, so the sequence is cut into n chunks of C = 64 positions (zero-padded;
    zero rows of phi(K) add nothing) and, for chunk c with rows Q_c, K_c, V+_c::

        U_c = K_c^T V+_c                         (dh, dvh+1)  chunk summary
        P_c = sum_{c' < c} U_c'                  exclusive prefix sum over chunks
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
        q_phi = _elu_plus_one(_split_heads(q, num_heads))  # (..., H, L, dh)
        k_phi = _elu_plus_one(_split_heads(k, num_heads))  # (..., H, S, dh)
        values = _split_heads(v, num_heads)  # (..., H, S, dvh)
        key_weight = None
        if key_mask is not None:
            # (..., S) -> (..., 1, S, 1): one weight per key, shared by heads and features
            key_weight = key_mask.reshape(key_mask.shape[:-1] + (1, key_mask.shape[-1], 1))
            k_phi *= key_weight  # masked keys: phi(k_t) = 0 contributes nothing
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
            scores = xp.matmul(q_c, _swap(k_c))  # (..., H, n, C, C)
            scores *= lower  # A_c
            summaries = xp.matmul(_swap(k_c), v_c)  # U_c (..., H, n, dh, dvh+1)
            prefix = xp.zeros_like(summaries)  # P_c = U_0 + ... + U_{c-1}
            prefix[..., 1:, :, :] = xp.cumsum(summaries[..., :-1, :, :], axis=-3)
            num = xp.matmul(q_c, prefix)
            num += xp.matmul(scores, v_c)
            num = _from_chunks(num, length)  # (..., H, L, dvh+1)
            ctx.chunk, ctx.pad, ctx.lower = chunk, pad, lower
            saved = (q_c, k_c, v_c, scores, prefix)
        else:
            state = xp.matmul(_swap(k_phi), values)  # S+ (..., H, dh, dvh+1)
            num = xp.matmul(q_phi, state)  # (..., H, L, dvh+1)
            saved = (q_phi, k_phi, values, state)
        den = num[..., -1:] + eps  # (..., H, L, 1)
        out = num[..., :-1] / den  # (..., H, L, dvh)
        ctx.causal = causal
        ctx.key_weight = key_weight
        ctx.save_for_backward(den, out, *saved)
        return _merge_heads(out)

    @staticmethod
    def backward(ctx, g):
        den, out, *saved = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        xp = backend.get_array_module(g)
        g = _split_heads(g, out.shape[-3])  # (..., H, L, dvh)
        d_den = _rowdot(g, out)
        d_den /= den
        d_den *= -1  # (..., H, L, 1)
        d_aug = xp.concatenate([g / den, d_den], axis=-1)  # dnum+ (..., H, L, dvh+1)
        length = out.shape[-2]
        grad_q = grad_k = grad_v = None
        if ctx.causal:
            q_c, k_c, v_c, scores, prefix = saved
            d_c = _to_chunks(_pad_length(d_aug, ctx.pad), ctx.chunk)  # (..., H, n, C, dvh+1)
            if need_q or need_k:
                d_scores = xp.matmul(d_c, _swap(v_c))  # (..., H, n, C, C)
                d_scores *= ctx.lower  # dA_c
            if need_k or need_v:
                d_prefix = xp.matmul(_swap(q_c), d_c)  # dP_c (..., H, n, dh, dvh+1)
                d_summaries = xp.zeros_like(d_prefix)  # dU_c = dP_{c+1} + ... + dP_{n-1}
                d_summaries[..., :-1, :, :] = reverse_cumsum(d_prefix[..., 1:, :, :], axis=-3)
            if need_q:
                d_q_phi = xp.matmul(d_c, _swap(prefix))
                d_q_phi += xp.matmul(d_scores, k_c)
                d_q_phi = _from_chunks(d_q_phi, length)
            if need_k:
                d_k_phi = xp.matmul(_swap(d_scores), q_c)
                d_k_phi += xp.matmul(v_c, _swap(d_summaries))
                d_k_phi = _from_chunks(d_k_phi, length)
            if need_v:
                grad_v = xp.matmul(_swap(scores), d_c)
                grad_v += xp.matmul(k_c, d_summaries)
                grad_v = _from_chunks(grad_v, length)[..., :-1]
            q_phi, k_phi = _from_chunks(q_c, length), _from_chunks(k_c, length)
        else:
            q_phi, k_phi, values, state = saved
            if need_q:
                d_q_phi = xp.matmul(d_aug, _swap(state))  # (..., H, L, dh)
            if need_k or need_v:
                d_state = xp.matmul(_swap(q_phi), d_aug)  # dS+ (..., H, dh, dvh+1)
            if need_k:
                d_k_phi = xp.matmul(values, _swap(d_state))
            if need_v:
                grad_v = xp.matmul(k_phi, d_state[..., :-1])
        if need_q:
            d_q_phi *= _elu_plus_one_grad(q_phi)
            grad_q = _merge_heads(d_q_phi)
        if need_k:
            # k_phi is already masked (0 rows at masked keys); the mask factor m_t of
            # dphi(k_t) is applied here as well
            d_k_phi *= _elu_plus_one_grad(k_phi)
            if ctx.key_weight is not None:
                d_k_phi *= ctx.key_weight
            grad_k = _merge_heads(d_k_phi)
        if need_v:
            grad_v = _merge_heads(grad_v)
        return grad_q, grad_k, grad_v


def linear_attention(q, k, v, num_heads, causal=False, key_mask=None) -> Tensor:
    """Multi-head elu+1 linear attention. See :class:`LinearAttention`.

    q, k (..., L, D), v (..., L, Dv) Tensors with D and Dv divisible by ``num_heads``
    (contiguous heads of D/num_heads features); ``key_mask`` bool (..., L), True = real
    token; ``causal`` restricts query i to keys t <= i. Output (..., L, Dv).
    """
    q_raw, k_raw, v_raw = _raw(q), _raw(k), _raw(v)
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
    return LinearAttention.apply(q, k, v, num_heads=int(num_heads), causal=bool(causal),
                                 key_mask=key_mask)
