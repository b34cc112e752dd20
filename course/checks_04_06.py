"""The checks of notebooks 04 to 06: the encoders' mask and rank, the two metrics, and the decayed
Hydra's gradient, bidirectional context and chunk matrix. Registered in :mod:`course.exercises`."""
from __future__ import annotations

import numpy as np

from tinyhydra.attention import reference
from tinyhydra.engine.tensor import Tensor
from tinyhydra.rec import metrics

from .checking import away_from_zero, call, case_rng, expect
from .checks_01_03 import _tril


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
    rng = case_rng(6)
    cases = _decay_cases(rng, bidirectional=False)
    for label, x, a in cases:
        h = away_from_zero(rng)(x.shape)
        y, decay = _decayed_context_reference(x, a)
        y.backward(h)
        expect(label, decay.grad, call(label, fn, x, a, h), "dL/da")
    return len(cases)


def _check_bidirectional_context(fn):
    cases = _decay_cases(case_rng(7), bidirectional=True)
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
