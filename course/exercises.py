r"""Automatic checks for the notebooks' exercises: ``check("hydra_causal_forward", fn)``.

A student fills in a function stub in a notebook and calls :func:`check`. The checker
runs the function on several cases (shapes, masks, edge cases such as L = 1, fully
masked rows or a zero query), compares it with the library's reference (the quadratic
forms of :mod:`tinyhydra.reference`, the fused ops' autograd, :mod:`tinyhydra.metrics`)
and, for a backward, wraps it in a :class:`~tinyhydra.Function` and runs
:func:`tinyhydra.gradcheck` on it. It prints ONE line,

    PASS hydra_causal_forward: 7 cases match hydra_attention_reference(causal=True)
    FAIL hydra_causal_forward: case 'a zero query row': out[0, 1, 0] expected 0, got nan

and returns True or False; it never raises because of the student's code.

Exercises by notebook (the argument names say what the function receives)::

    01  tanh_backward(y, g)                         y = tanh(x) -> dL/dx
        softmax_backward(y, g)                      y = softmax(x) over the last axis -> dL/dx
        layer_norm_backward(xhat, inv_std, g)       xhat = (x - mu) inv_std -> dL/dx
    02  causal_mask(length)                         (L, L) bool, True = may attend
        softmax_attention(q, k, v, mask)            raw arrays -> (..., L, dv)
        softmax_attention_backward(q, k, v, mask, g)  -> (dq, dk, dv)
    03  hydra_causal_forward(q, k, v)               phi(q)_i * sum_{t<=i} phi(k)_t * v_t
        hydra_causal_backward(q_hat, k_hat, v, g)   for out = q_hat * cumsum(k_hat * v) -> grads
        decayed_prefix_sum(x, a)                    y_i = sum_{t<=i} a^(i-t) x_t, a (D,) in [0, 1]
    04  attention_mask(ids, causal)                 (B, L, L) bool from left-padded ids
        rank_of_target(scores, target, exclude)     one user's 0-based full-ranking rank
    05  ndcg_at_k(ranks, k), hit_rate_at_k(ranks, k)
    06  decay_gradient(x, a, h)                     d/da of sum(h * y), y the decayed prefix sum of x
        bidirectional_context(u, a0, a1)            sum_{t<=i} a0^(i-t) u_t + sum_{t>i} a1^(t-i) u_t
        chunk_decay_matrix(a, chunk)                (D, C, C): P[f, i, j] = a_f^(i-j) for j <= i, else 0
"""
from __future__ import annotations

import numpy as np

from tinyhydra import functional as F
from tinyhydra import metrics, reference
from tinyhydra.tensor import Tensor

from .checking import (
    Failed,
    Trace,
    as_grads,
    autograd_grads,
    away_from_zero,
    call,
    expect,
    function_from,
    gradcheck_case,
)

__all__ = ["check", "run", "EXERCISES", "decayed_prefix_sum_loop", "decay_matrix"]

# ---------------------------------------------------------------- 01 autograd
def _elementwise_backward(fn, forward, library, shapes, extra_cases):
    """Shared by the backward exercises whose ``fn(saved..., g)`` returns dL/dx for one input x."""
    r = away_from_zero(np.random.default_rng(0))
    cases = [(f"x of shape {shape}", 2 * r(shape)) for shape in shapes] + extra_cases  # |x| in [1, 4]
    for label, x in cases:
        g = r(x.shape)
        _, saved = forward(x)
        expect(label, autograd_grads(library, [x], g)[0], call(label, fn, *saved, g), "dL/dx")
    function = function_from(forward, lambda saved, g: fn(*saved, g))
    for label, x in cases[:len(shapes)]:
        gradcheck_case(label, function, [x])
    return len(cases) + len(shapes)


def _tanh_forward(x):
    y = np.tanh(x)
    return y, (y,)


def _softmax_forward(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, (y,)


def _layer_norm_forward(x, eps=1e-5):
    centred = x - x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = centred * inv_std
    return xhat, (xhat, inv_std)


def _check_tanh_backward(fn):
    saturated = ("saturated |x| = 30", np.array([-30.0, -1.0, 0.0, 1.0, 30.0]))
    return _elementwise_backward(fn, _tanh_forward, lambda x: x.tanh(), [(5,), (3, 4), (2, 3, 4)], [saturated])


def _check_softmax_backward(fn):
    edges = [("a row of length 1", np.array([[0.3], [-2.0]])),
             ("a nearly one-hot row", np.array([[12.0, -3.0, 0.5, 1.0]]))]
    return _elementwise_backward(fn, _softmax_forward, F.softmax, [(4,), (3, 5), (2, 3, 6)], edges)


def _check_layer_norm_backward(fn):
    edges = [("D = 2", np.array([[1.0, -0.5], [0.2, 0.3]]))]
    return _elementwise_backward(fn, _layer_norm_forward, F.layer_norm, [(6,), (3, 6), (2, 3, 5)], edges)


# ------------------------------------------------------------ 02 softmax attention
def _tril(length):
    """(L, L) bool: [t <= i]."""
    return np.greater_equal.outer(np.arange(length), np.arange(length))


def _check_causal_mask(fn):
    lengths = (1, 2, 3, 6)
    for length in lengths:
        mask = call(f"L = {length}", fn, length)
        if np.asarray(mask).dtype != bool:
            raise Failed(f"case 'L = {length}': expected a bool array, got dtype {np.asarray(mask).dtype}")
        expect(f"L = {length}", _tril(length), mask, "mask")
    return len(lengths)


def _attention_cases():
    """(label, q, k, v, mask) for the softmax attention exercises: shapes, masks, edge cases."""
    rng = np.random.default_rng(1)
    r = away_from_zero(rng)
    padded = _tril(4)[None] & (np.arange(4) >= np.array([[0], [2]]))[:, None, :]  # (2, 4, 4)
    return [
        ("L = 3, d = 2, no mask", 2 * r((3, 2)), 2 * r((3, 2)), r((3, 2)), None),
        ("L = 1, causal", r((1, 4)), r((1, 4)), r((1, 3)), _tril(1)),
        ("batch of 2, L = 5, causal", r((2, 5, 3)), r((2, 5, 3)), r((2, 5, 3)), _tril(5)),
        ("left padding: fully masked rows output 0", r((2, 4, 3)), r((2, 4, 3)), r((2, 4, 2)), padded),
        ("(B, H, L, d) = (2, 2, 4, 3), causal", r((2, 2, 4, 3)), r((2, 2, 4, 3)), r((2, 2, 4, 3)), _tril(4)),
        ("3 queries, 5 keys, random mask", r((3, 2)), r((5, 2)), r((5, 3)), rng.random((3, 5)) > 0.4),
        ("large scores (shift by the row max)", 40 * r((3, 4)), 40 * r((3, 4)), r((3, 4)), _tril(3)),
    ]


def _reference_attention(mask):
    return lambda q, k, v: reference.softmax_attention_reference(q, k, v, mask=mask)


def _check_softmax_attention(fn):
    cases = _attention_cases()
    for label, q, k, v, mask in cases:
        expected = _reference_attention(mask)(q, k, v).data
        expect(label, expected, call(label, fn, q, k, v, mask))
    return len(cases)


def _check_softmax_attention_backward(fn):
    rng = np.random.default_rng(2)
    cases = _attention_cases()
    for label, q, k, v, mask in cases:
        g = away_from_zero(rng)(q.shape[:-1] + v.shape[-1:])
        expected = autograd_grads(_reference_attention(mask), [q, k, v], g)
        answer = as_grads(label, call(label, fn, q, k, v, mask, g), 3)
        for name, want, got in zip(("dq", "dk", "dv"), expected, answer):
            expect(label, want, got, name)
    checked = cases[1:5]  # gradcheck on small cases: it costs two forwards per input entry
    for label, q, k, v, mask in checked:
        function = function_from(lambda q, k, v, mask=mask: (_reference_attention(mask)(q, k, v).data, (q, k, v)),
                             lambda saved, g, mask=mask: tuple(fn(*saved, mask, g)))
        gradcheck_case(label, function, [q, k, v])
    return len(cases) + len(checked)


# ------------------------------------------------------------------ 03 hydra
def _hydra_cases():
    rng = np.random.default_rng(3)
    r = away_from_zero(rng)
    zero_query = r((2, 4, 3))
    zero_query[0, 1] = 0.0  # phi(0) = 0 / max(0, eps) = 0, not NaN
    return [
        ("L = 3, D = 2", r((3, 2)), r((3, 2)), r((3, 2))),
        ("L = 1", r((1, 4)), r((1, 4)), r((1, 4))),
        ("D = 1", r((5, 1)), r((5, 1)), r((5, 1))),
        ("batch of 2, L = 6, D = 4", r((2, 6, 4)), r((2, 6, 4)), r((2, 6, 4))),
        ("(B, H, L, D) = (2, 2, 5, 3)", r((2, 2, 5, 3)), r((2, 2, 5, 3)), r((2, 2, 5, 3))),
        ("a zero query row", zero_query, r((2, 4, 3)), r((2, 4, 3))),
    ]


def _check_hydra_causal_forward(fn):
    cases = _hydra_cases()
    for label, q, k, v in cases:
        expected = reference.hydra_attention_reference(q, k, v, causal=True).data
        expect(label, expected, call(label, fn, q, k, v))
    return len(cases)


def _prefix_product_quadratic(q_hat, k_hat, v):
    """out_i = sum_t [t <= i] q_hat_i * k_hat_t * v_t as Tensors, with the (..., L, L, D) products."""
    length = q_hat.shape[-2]
    weight = Tensor(_tril(length)[:, :, None].astype(np.float64))  # (L, L, 1): C[i, t]
    q_i = q_hat.reshape(*q_hat.shape[:-1], 1, q_hat.shape[-1])  # (..., L, 1, D)
    kv_t = (k_hat * v).reshape(*v.shape[:-2], 1, *v.shape[-2:])  # (..., 1, L, D)
    return (q_i * kv_t * weight).sum(axis=-2)  # (..., L, D)


def _check_hydra_causal_backward(fn):
    rng = np.random.default_rng(4)
    cases = [case for case in _hydra_cases() if case[0] != "a zero query row"]
    for label, q_hat, k_hat, v in cases:
        g = away_from_zero(rng)(v.shape)
        expected = autograd_grads(_prefix_product_quadratic, [q_hat, k_hat, v], g)
        answer = as_grads(label, call(label, fn, q_hat, k_hat, v, g), 3)
        for name, want, got in zip(("d_q_hat", "d_k_hat", "d_v"), expected, answer):
            expect(label, want, got, name)
    function = function_from(lambda q, k, v: (q * np.cumsum(k * v, axis=-2), (q, k, v)),
                         lambda saved, g: tuple(fn(*saved, g)))
    for label, q_hat, k_hat, v in cases[:4]:
        gradcheck_case(label, function, [q_hat, k_hat, v])
    return len(cases) + 4


def decayed_prefix_sum_loop(x, a):
    """y[..., i, :] = sum_{t <= i} a^(i - t) x[..., t, :], written as the double loop it reads as.

    x (..., L, D), a (D,) per-feature decays in [0, 1] (0^0 = 1, so a = 0 gives y = x and
    a = 1 the plain prefix sum). O(L^2 D): the slow, obviously right answer to compare with.
    """
    x, a = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    y = np.zeros_like(x)
    for i in range(x.shape[-2]):
        for t in range(i + 1):
            y[..., i, :] += a ** (i - t) * x[..., t, :]
    return y


def _check_decayed_prefix_sum(fn):
    rng = np.random.default_rng(5)
    r = away_from_zero(rng)
    cases = [
        ("a = 1 is the prefix sum", r((5, 3)), np.ones(3)),
        ("a = 0 leaves x unchanged", r((5, 3)), np.zeros(3)),
        ("a per feature: 0, 0.5, 0.9, 1", r((6, 4)), np.array([0.0, 0.5, 0.9, 1.0])),
        ("L = 1", r((1, 2)), np.array([0.3, 0.7])),
        ("batch of 2, L = 7, D = 3", r((2, 7, 3)), rng.uniform(0.2, 0.9, 3)),
        ("(B, H, L, D) = (2, 2, 4, 2)", r((2, 2, 4, 2)), rng.uniform(0.2, 0.9, 2)),
        ("L = 40, a = 0.95", r((40, 2)), np.full(2, 0.95)),
    ]
    for label, x, a in cases:
        expect(label, decayed_prefix_sum_loop(x, a), call(label, fn, x, a), "y")
    return len(cases)


# ----------------------------------------------------------------- 06 decayed Hydra
def _decayed_context_reference(x, decay):
    """(kv, decay Tensor) from the quadratic reference with explicit (D, L, L) decay matrices.

    With q = k = 1 the cosine feature map gives 1/sqrt(D) in every feature, so v = D x makes
    the output exactly the decayed context of x: kv_i = sum_t W[i, t] x_t.
    """
    dim = x.shape[-1]
    decay = Tensor(np.asarray(decay, dtype=np.float64), requires_grad=True)
    ones = np.ones_like(x)
    kv = reference.decayed_hydra_attention_reference(ones, ones, dim * x, decay, causal=decay.ndim == 1)
    return kv, decay


def _decay_cases(rng, bidirectional):
    """(label, x, a): a (D,), or (2, D) rows a0 < 0.5 < a1 when bidirectional (so the two sides differ)."""
    r = away_from_zero(rng)

    def decays(dim):
        if bidirectional:
            return np.stack([rng.uniform(0.05, 0.45, dim), rng.uniform(0.55, 0.95, dim)])
        return rng.uniform(0.2, 0.9, dim)

    rows = (2,) if bidirectional else ()
    return [
        ("a = 1", r((5, 3)), np.ones(rows + (3,))),
        ("a = 0", r((5, 3)), np.zeros(rows + (3,))),
        ("a per feature", r((6, 4)), decays(4)),
        ("L = 1", r((1, 2)), decays(2)),
        ("batch of 2, L = 9", r((2, 9, 3)), decays(3)),
    ]


def _check_decay_gradient(fn):
    rng = np.random.default_rng(6)
    cases = _decay_cases(rng, bidirectional=False)
    for label, x, a in cases:
        h = away_from_zero(rng)(x.shape)
        y, decay = _decayed_context_reference(x, a)
        y.backward(h)
        expect(label, decay.grad, call(label, fn, x, a, h), "dL/da")
    return len(cases)


def _check_bidirectional_context(fn):
    cases = _decay_cases(np.random.default_rng(7), bidirectional=True)
    for label, u, decay in cases:
        expect(label, _decayed_context_reference(u, decay)[0].data, call(label, fn, u, *decay), "kv")
    return len(cases)


def _check_chunk_decay_matrix(fn):
    cases = [("a = 1: ones on and below the diagonal", np.ones(3), 4), ("a = 0: the identity", np.zeros(2), 5),
             ("a per feature: 0, 0.5, 0.9, 1", np.array([0.0, 0.5, 0.9, 1.0]), 6), ("C = 1", np.array([0.3, 0.7]), 1),
             ("a = 1e-6, C = 64: a^(i-j) above the diagonal would overflow", np.full(2, 1e-6), 64)]
    for label, a, chunk in cases:
        expect(label, decay_matrix(a, chunk), call(label, fn, a, chunk), "P")
    return len(cases)


def decay_matrix(a, chunk):
    """(D, C, C): a_f^(i-j) for j <= i, else 0 (|i - j| as the exponent: no negative power)."""
    lag = np.subtract.outer(np.arange(chunk), np.arange(chunk))  # (C, C) i - j
    return np.where(lag >= 0, np.asarray(a, dtype=np.float64)[:, None, None] ** np.abs(lag), 0.0)


# ----------------------------------------------------------------- 04 encoders
def _check_attention_mask(fn):
    ids = np.array([[5, 2, 7, 1], [0, 0, 3, 4], [0, 0, 0, 9]])  # (B, L) left-padded
    cases = [("causal, left padding", ids, True), ("bidirectional, left padding", ids, False),
             ("L = 1", np.array([[4], [0]]), True), ("no padding, bidirectional", ids[:1], False)]
    for label, batch, causal in cases:
        num_rows, length = batch.shape
        expected = np.broadcast_to((batch != 0)[:, None, :], (num_rows, length, length))  # real keys
        if causal:
            expected = expected & _tril(length)
        expect(label, expected, call(label, fn, batch, causal), "mask")
    return len(cases)


def _check_rank_of_target(fn):
    scores = np.array([0.6, 0.1, 0.7, 0.3, 0.7, 0.5, 0.9])  # column 0 = padding, never ranked
    nothing = np.zeros(7, dtype=bool)
    history = np.array([False, False, False, False, False, False, True])  # item 6 was seen
    cases = [
        ("the best item", scores, 6, nothing),
        ("a middle item", scores, 5, nothing),
        ("a tie counts against the target", scores, 2, nothing),
        ("padding (column 0) is never a candidate", scores, 1, nothing),
        ("a seen item is excluded", scores, 5, history),
        ("the target is never excluded", scores, 6, history),
    ]
    for label, s, target, exclude in cases:
        expected = metrics.rank_of_target(s[None], np.array([target]), exclude[None])[0]
        expect(label, expected, call(label, fn, s, target, exclude), "rank")
    return len(cases)


# ------------------------------------------------------------------ 05 results
_RANKS = [([0], 10), ([0, 1, 9, 10, 250], 10), ([0, 1, 3], 1), ([4, 5], 5), ([10, 11], 10)]


def _check_metric(fn, name):
    for ranks, k in _RANKS:
        label = f"ranks {ranks}, k = {k}"
        expected = metrics.metrics_from_ranks(np.array(ranks), ks=(k,))[f"{name}@{k}"]
        expect(label, expected, call(label, fn, np.array(ranks), k), name)
    return len(_RANKS)


# ------------------------------------------------------------------ registry
EXERCISES = {
    "tanh_backward": (_check_tanh_backward, "the autograd of Tensor.tanh and gradcheck"),
    "softmax_backward": (_check_softmax_backward, "the autograd of F.softmax and gradcheck"),
    "layer_norm_backward": (_check_layer_norm_backward, "the autograd of F.layer_norm and gradcheck"),
    "causal_mask": (_check_causal_mask, "the lower triangle [t <= i]"),
    "softmax_attention": (_check_softmax_attention, "softmax_attention_reference"),
    "softmax_attention_backward": (_check_softmax_attention_backward,
                                   "the autograd of softmax_attention_reference and gradcheck"),
    "hydra_causal_forward": (_check_hydra_causal_forward, "hydra_attention_reference(causal=True)"),
    "hydra_causal_backward": (_check_hydra_causal_backward, "the autograd of the quadratic form and gradcheck"),
    "decayed_prefix_sum": (_check_decayed_prefix_sum, "the double loop decayed_prefix_sum_loop"),
    "attention_mask": (_check_attention_mask, "real keys [ids_t != 0], and [t <= i] when causal"),
    "rank_of_target": (_check_rank_of_target, "metrics.rank_of_target"),
    "ndcg_at_k": (lambda fn: _check_metric(fn, "NDCG"), "metrics.metrics_from_ranks"),
    "hit_rate_at_k": (lambda fn: _check_metric(fn, "HR"), "metrics.metrics_from_ranks"),
    "decay_gradient": (_check_decay_gradient, "the autograd of the explicit decay matrices"),
    "bidirectional_context": (_check_bidirectional_context, "decayed_hydra_attention_reference"),
    "chunk_decay_matrix": (_check_chunk_decay_matrix, "P[f, i, j] = a_f^(i-j) below the diagonal, 0 above"),
}


def check(name: str, fn) -> bool:
    """Run exercise ``name``'s cases on ``fn``; print one line (PASS or the first failure); return it.

    Unknown names raise KeyError listing the known ones (a typo is the caller's mistake,
    not a failed exercise); errors inside ``fn`` are reported as a failed case.
    """
    if name not in EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
    outcome = run(name, fn)
    if isinstance(outcome, Failed):
        print(f"FAIL {name}: {outcome}")
        return False
    print(f"PASS {name}: {outcome} cases match {EXERCISES[name][1]}")
    return True


def run(name: str, fn):
    """The number of cases that ``fn`` passed, or the first :class:`Failed` (with the hint of a
    known mistake appended when the answer matches one on the failing case)."""
    from .mistakes import hint  # the mistakes are written with this module's references

    run_cases = EXERCISES[name][0]
    try:
        return run_cases(fn)
    except Failed as failure:
        matched = hint(name, Trace.args, Trace.result) if Trace.result is not None else ""
        if matched:
            failure.args = (f"{failure.args[0]}; {matched}",)
        return failure
