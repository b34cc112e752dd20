r"""Prefix sums along the sequence axis, plain or decayed, and their adjoints.

Causal Hydra needs kv_i = sum_{t<=i} u_t and its decayed form kv_i = sum_{t<=i} a^(i-t) u_t,
i.e. the linear recurrence

    y_i = a * y_{i-1} + x_i        (a = 1: the plain prefix sum; a (D,) one decay per feature)

along axis -2 of an (..., L, D) array. NumPy's ``cumsum`` along a non-last axis runs
a strided loop that is tens of times slower per element than an elementwise op (2 ms
for (2, 4096, 64) float32, where ``x * x`` takes 0.05 ms), and it has no decayed form.
So the sequence is cut into chunks of C ~ sqrt(L) positions and the recurrence runs in
two levels:

1. inside every chunk at once: C - 1 vectorised steps y[:, j] += a * y[:, j-1] over all
   chunks (a Python loop over the C positions of a chunk, never over L);
2. across chunks: the state entering chunk c is y at the end of chunk c-1, which is
   itself the same recurrence over the L / C chunk totals with decay a^C (a recursive
   call); chunk c then adds a^(j+1) * state to its position j.

Level 1 has two forms, the same sum (``method``):

* ``"loop"`` (NumPy's default): the C - 1 steps above, the fewest operations (for a plain
  sum of a small array, one ``cumsum`` call: the same additions, without C - 1 calls);
* ``"matmul"`` (CuPy's default): chunks of C = 64 and one product per chunk with the
  lower-triangular matrix P[i, j] = a^(i-j), j <= i, i.e. y_chunk = P x_chunk, the
  parallel form of RetNet's and gated linear attention's chunkwise training. It does C
  times the arithmetic, but in a few large kernels: on a GPU a step of the loop is one
  kernel launch (31 of them per sum at L = 200), and launches, not arithmetic, are
  what a short sequence costs there.

Every power a^n has n >= 0, so nothing overflows (the a^i * cumsum(a^-t x_t) trick
overflows for small a), and powers below the dtype's smallest normal number are set to
0: subnormal arithmetic is slow, and they change no result above that size.

The adjoint of y = P x (P[i, t] = a^(i-t), t <= i) is x' = P^T y', the same recurrence
run backwards: :func:`reverse_prefix_sum`.

**The linear-attention product.** Linear attention with dh features per head needs
out_i = sum_{t<=i} (q_i . k_t) v_t, a prefix sum of the outer products k_t v_t^T (dh x dv
each) read by q_i. :func:`linear_product` cuts the sequence into chunks of C positions
and takes the earlier chunks through one summed state (the chunk summaries run through
:func:`prefix_sum`) and the own chunk quadratically; see its docstring.
"""
from __future__ import annotations

import math

from ..engine import backend
from .masking import swap_last

__all__ = ["prefix_sum", "reverse_prefix_sum", "linear_product", "linear_product_backward"]

DIRECT = 32  # sequences this short are one chunk (the loop form)
MATMUL_CHUNK = 64  # chunk length of the matrix form
# the loop form costs about a microsecond of Python per step, cumsum a few nanoseconds per
# element: below this many elements per step of the loop, the plain sum is one cumsum call
CUMSUM_ELEMENTS_PER_STEP = 400
METHODS = ("loop", "matmul")


def _flush_subnormal(powers, dtype):
    """Powers of a decay, with the ones below the smallest normal number set to 0."""
    xp = backend.get_array_module(powers)
    powers = powers.astype(dtype)
    tiny = xp.finfo(dtype).tiny
    return xp.where(powers < tiny, xp.zeros((), dtype), powers)


def _chunk_matrix(decay, chunk, dtype, xp):
    """P[i, j] = a^(i-j) for j <= i, else 0: (C, C) for a = 1, (D, C, C) for a decay (D,)."""
    gap = xp.arange(chunk)[:, None] - xp.arange(chunk)[None, :]  # (C, C) i - j
    if decay is None:
        return (gap >= 0).astype(dtype)
    powers = _flush_subnormal(decay[:, None, None] ** xp.maximum(gap, 0), dtype)  # (D, C, C)
    return xp.where(gap >= 0, powers, xp.zeros((), dtype))


def prefix_sum(x, decay=None, method=None):
    """y_i = a * y_{i-1} + x_i along axis -2 (y_0 = x_0): sum_{t<=i} a^(i-t) x_t.

    x (..., L, D) float; decay None (a = 1, the plain cumsum) or an array (D,) of
    values in [0, 1] in x's dtype; method "loop" or "matmul" (the level-1 form, see the
    module docstring; None: "loop" on NumPy, "matmul" on CuPy). Returns a new array of
    x's shape and dtype.
    """
    xp = backend.get_array_module(x)
    if method is None:
        method = "matmul" if backend.is_gpu_array(x) else "loop"
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    length, dim = x.shape[-2:]
    if length == 0:
        return x.copy()  # an empty sequence: nothing to sum
    if method == "matmul":
        chunk = min(length, MATMUL_CHUNK)
    else:
        chunk = length if length <= DIRECT else max(DIRECT, math.isqrt(length))
    count = -(-length // chunk)
    pad = count * chunk - length  # zeros at the end change no earlier position
    if pad:
        x = xp.concatenate([x, xp.zeros(x.shape[:-2] + (pad, dim), dtype=x.dtype)], axis=-2)
    y = x.reshape(x.shape[:-2] + (count, chunk, dim))  # (..., n, C, D)
    if method == "matmul":  # level 1: one product per chunk, y = P x
        matrix = _chunk_matrix(decay, chunk, x.dtype, xp)
        if decay is None:
            y = matrix @ y  # (C, C) @ (..., n, C, D)
        else:  # one product per feature: (D, C, C) @ (D, C, M), M = every chunk of every row
            columns = y.reshape(-1, chunk, dim).transpose(2, 1, 0)  # (D, C, M)
            y = (matrix @ columns).transpose(2, 1, 0).reshape(y.shape)
    elif decay is None and y.size <= CUMSUM_ELEMENTS_PER_STEP * (chunk - 1):
        y = xp.cumsum(y, axis=-2)  # the same additions in the same order, in one call
    else:
        y = y.copy()
        scaled = xp.empty_like(y[..., 0, :]) if decay is not None else None
        for j in range(1, chunk):  # level 1: the recurrence inside every chunk at once
            if decay is None:
                y[..., j, :] += y[..., j - 1, :]
            else:
                xp.multiply(y[..., j - 1, :], decay, out=scaled)
                y[..., j, :] += scaled
    if count > 1:  # level 2: the states carried between chunks
        chunk_decay = None if decay is None else _flush_subnormal(decay**chunk, x.dtype)
        ends = prefix_sum(y[..., -1, :], chunk_decay, method)  # (..., n, D) y at each chunk's end
        carried = ends[..., :-1, None, :]  # (..., n-1, 1, D) entering chunks 1..n-1
        if decay is not None:
            steps = xp.arange(1, chunk + 1)[:, None]  # (C, 1)
            carried = carried * _flush_subnormal(decay[None, :] ** steps, x.dtype)  # a^(j+1)
        y[..., 1:, :, :] += carried
    y = y.reshape(x.shape)
    return y[..., :length, :] if pad else y


def reverse_prefix_sum(x, decay=None, method=None):
    """r_t = sum_{i>=t} a^(i-t) x_i: the adjoint (backward) of :func:`prefix_sum`."""
    xp = backend.get_array_module(x)
    return xp.flip(prefix_sum(xp.flip(x, -2), decay, method), -2)


# ---------------------------------------------------------------- the linear-attention product
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
    """``scan`` (prefix_sum or reverse_prefix_sum) over the chunk axis of (..., n, dh, dw)
    summaries, each (dh, dw) matrix flattened to one row of features."""
    if summaries.shape[-3] == 0:
        return summaries
    flat = summaries.reshape(summaries.shape[:-2] + (-1,))  # (..., n, dh * dw)
    return scan(flat).reshape(summaries.shape)


def linear_product(q, k, v, causal, chunk=64):
    r"""out_i = sum_{t in T(i)} (q_i . k_t) v_t: q (..., L, dh), k (..., S, dh), v (..., S, dw).

    T(i) = every t (``causal`` False) or t <= i (True, L = S). Returns ``(out, saved)``:
    out (..., L, dw) and what :func:`linear_product_backward` needs.

    **Every t**: out = q S with the state S = k^T v (dh, dw): two GEMMs, O(L dh dw).

    **t <= i**: materialising every S_i = sum_{t<=i} k_t v_t^T costs O(L dh dw) memory,
    so the sequence is cut into n chunks of C positions (zero-padded; zero rows of k add
    nothing) and, for chunk c with rows q_c, k_c, v_c::

        U_c = k_c^T v_c                  (dh, dw)  chunk summary
        P_c = sum_{c' < c} U_c'          exclusive prefix sum over chunks (prefix_sum)
        A_c = tril(q_c k_c^T)            (C, C)  within the chunk, t <= i
        out_c = q_c P_c + A_c v_c        (C, dw)

    i.e. earlier chunks through their summed state, the own chunk quadratically:
    O(L C + (L / C) dh dw) memory, O(L dh (C + dw)) time, everything a GEMM.
    """
    xp = backend.get_array_module(q)
    if not causal:
        state = xp.matmul(swap_last(k), v)  # S (..., dh, dw)
        return xp.matmul(q, state), ("full", q, k, v, state)
    length = q.shape[-2]
    chunk = max(1, min(chunk, length))
    pad = -length % chunk
    q_c = _to_chunks(_pad_length(q, pad), chunk)  # (..., n, C, dh)
    k_c = _to_chunks(_pad_length(k, pad), chunk)
    v_c = _to_chunks(_pad_length(v, pad), chunk)  # (..., n, C, dw)
    lower = xp.tril(xp.ones((chunk, chunk), dtype=bool))
    scores = xp.matmul(q_c, swap_last(k_c))  # (..., n, C, C)
    scores *= lower  # A_c
    summaries = xp.matmul(swap_last(k_c), v_c)  # U_c (..., n, dh, dw)
    prefix = xp.zeros_like(summaries)  # P_c = U_0 + ... + U_{c-1}
    prefix[..., 1:, :, :] = _over_chunks(prefix_sum, summaries[..., :-1, :, :])
    out = xp.matmul(q_c, prefix)
    out += xp.matmul(scores, v_c)
    return _from_chunks(out, length), ("chunks", q_c, k_c, v_c, scores, prefix, lower)


def linear_product_backward(saved, grad, need_q=True, need_k=True, need_v=True):
    r"""(dq, dk, dv) of :func:`linear_product` for grad = dL/dout (..., L, dw); None where
    not needed.

    Every t (out = q S, S = k^T v)::

        dq = G S^T,   dS = q^T G,   dk = v dS^T,   dv = k dS

    t <= i, per chunk (dA_c masked by the same tril)::

        dA_c = tril(G_c v_c^T)
        dq_c = G_c P_c^T + dA_c k_c
        dP_c = q_c^T G_c
        dU_c = sum_{c' > c} dP_c'        the adjoint of an exclusive prefix sum is an
                                         exclusive reversed prefix sum
        dk_c = dA_c^T q_c + v_c dU_c^T
        dv_c = A_c^T G_c + k_c dU_c
    """
    xp = backend.get_array_module(grad)
    grad_q = grad_k = grad_v = None
    if saved[0] == "full":
        _, q, k, v, state = saved
        if need_q:
            grad_q = xp.matmul(grad, swap_last(state))  # (..., L, dh)
        if need_k or need_v:
            d_state = xp.matmul(swap_last(q), grad)  # dS (..., dh, dw)
            grad_k = xp.matmul(v, swap_last(d_state)) if need_k else None
            grad_v = xp.matmul(k, d_state) if need_v else None
        return grad_q, grad_k, grad_v
    _, q_c, k_c, v_c, scores, prefix, lower = saved
    length, chunk = grad.shape[-2], q_c.shape[-2]
    d_c = _to_chunks(_pad_length(grad, -length % chunk), chunk)  # (..., n, C, dw)
    if need_q or need_k:
        d_scores = xp.matmul(d_c, swap_last(v_c))  # (..., n, C, C)
        d_scores *= lower  # dA_c
    if need_k or need_v:
        d_prefix = xp.matmul(swap_last(q_c), d_c)  # dP_c (..., n, dh, dw)
        d_summaries = xp.zeros_like(d_prefix)  # dU_c = dP_{c+1} + ... + dP_{n-1}
        d_summaries[..., :-1, :, :] = _over_chunks(reverse_prefix_sum, d_prefix[..., 1:, :, :])
    if need_q:
        grad_q = xp.matmul(d_c, swap_last(prefix))
        grad_q += xp.matmul(d_scores, k_c)
        grad_q = _from_chunks(grad_q, length)
    if need_k:
        grad_k = xp.matmul(swap_last(d_scores), q_c)
        grad_k += xp.matmul(v_c, swap_last(d_summaries))
        grad_k = _from_chunks(grad_k, length)
    if need_v:
        grad_v = xp.matmul(swap_last(scores), d_c)
        grad_v += xp.matmul(k_c, d_summaries)
        grad_v = _from_chunks(grad_v, length)
    return grad_q, grad_k, grad_v
