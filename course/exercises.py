r"""Automatic checks for the notebooks' exercises: ``check("hydra_causal_forward", fn)``.

A student fills in a function stub in a notebook and calls :func:`check`. The checker
runs the function on several cases (shapes, masks, edge cases such as L = 1, fully
masked rows or a zero query), compares it with the library's reference (the quadratic
forms of :mod:`tinyhydra.attention.reference`, the fused ops' autograd, :mod:`tinyhydra.rec.metrics`)
and, for a backward, wraps it in a :class:`~tinyhydra.Function` and runs
:func:`tinyhydra.engine.gradcheck` on it. It prints ONE line,

    PASS hydra_causal_forward: 6 cases match hydra_attention_reference(causal=True)
    FAIL hydra_causal_forward: case 'a zero query row' (q (2, 4, 3), k (2, 4, 3), v (2, 4, 3)):
         out[0, 1, 0] expected 0, got nan; hint: this looks like the eps guard missing: ...

(on one line: the case, its shapes, its inputs when at most 4 x 4, the first differing entry,
and the hint of :mod:`course.mistakes` when the answer matches a known mistake there) and
returns True or False; it never raises because of the student's code. The cases live in
:mod:`course.checks_01_03` and :mod:`course.checks_04_06`.

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

from .checking import Failed, Trace
from .checks_01_03 import (
    _check_causal_mask,
    _check_decayed_prefix_sum,
    _check_hydra_causal_backward,
    _check_hydra_causal_forward,
    _check_layer_norm_backward,
    _check_softmax_attention,
    _check_softmax_attention_backward,
    _check_softmax_backward,
    _check_tanh_backward,
    decayed_prefix_sum_loop,
)
from .checks_04_06 import (
    _check_attention_mask,
    _check_bidirectional_context,
    _check_chunk_decay_matrix,
    _check_decay_gradient,
    _check_metric,
    _check_rank_of_target,
    _decay_cases,
    decay_matrix,
)

__all__ = ["check", "run", "EXERCISES", "decayed_prefix_sum_loop", "decay_matrix", "_decay_cases"]

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
