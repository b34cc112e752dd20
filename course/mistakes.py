r"""Known mistakes of each exercise, each with the hint a failure message adds when an answer
matches it on the failing case.

A mistake is written as the wrong computation itself, from the library's references and
prefix sums (never from the answers), so that the checker can run it on the failing
case: when the answer's whole output equals the mistake's output there, the one-line
report ends with ``hint: <the mistake>: <what to change>``.

tests/test_exercises.py holds every mistake to two promises: the check fails on it with
its hint, and on the case that fails first its wrong value differs from the right one by
at least 5 % (relative), so that no failure reads like a rounding error.
"""
from __future__ import annotations

import numpy as np

from tinyhydra.attention import reference
from tinyhydra.attention.scan import prefix_sum, reverse_prefix_sum
from tinyhydra.rec import metrics

from .checking import autograd_grads
from .exercises import decay_matrix as _chunk

__all__ = ["MISTAKES", "hint"]


def _phi(x):
    """The cosine feature map x / max(||x||, eps) of the library's reference."""
    return reference.cosine_feature_map_reference(x).data


def _unguarded(x):
    """x / ||x|| without the eps guard: 0 / 0 = NaN for a zero row."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _decayed(x, a):
    """y_i = sum_{t <= i} a^(i-t) x_t, from the library's decayed prefix sum."""
    return prefix_sum(np.asarray(x, dtype=np.float64), decay=np.asarray(a, dtype=np.float64))


def _decayed_reversed(x, a):
    """r_t = sum_{i >= t} a^(i-t) x_i."""
    return reverse_prefix_sum(np.asarray(x, dtype=np.float64), decay=np.asarray(a, dtype=np.float64))


def _lagged(y):
    """y one step later along the sequence: (0, y_0, ..., y_{L-2})."""
    out = np.zeros_like(y)
    out[..., 1:, :] = y[..., :-1, :]
    return out


def _per_feature(values, dim):
    return values.reshape(-1, dim).sum(axis=0)


def _attention(mask, scale=True):
    def run(q, k, v):
        return reference.softmax_attention_reference(q if scale else q * np.sqrt(q.shape[-1]), k, v, mask=mask)
    return run


def _attention_grads(q, k, v, mask, g):
    return tuple(autograd_grads(_attention(mask), [q, k, v], g))


def _unscaled(grads, dim):
    """(dq, dk, dv) with dq and dk missing the factor c = 1/sqrt(d) of the scores."""
    return grads[0] * np.sqrt(dim), grads[1] * np.sqrt(dim), grads[2]


def _tril(n, k=0):
    return np.tril(np.ones((n, n), dtype=bool), k=k)


def _rank(scores, target, exclude):
    return int(metrics.rank_of_target(scores[None], np.array([target]), exclude[None])[0])


def _ties(scores, target, exclude):
    others = ~exclude
    others[[0, target]] = False
    return int(np.sum(others & (scores == scores[target])))


def _swapped_grads(grads, first, second):
    grads = list(grads)
    grads[first], grads[second] = grads[second], grads[first]
    return tuple(grads)


def _hydra_backward(q_hat, k_hat, v, g, reverse=True):
    kv = prefix_sum(k_hat * v)
    back = reverse_prefix_sum(g * q_hat) if reverse else prefix_sum(g * q_hat)
    return g * kv, back * v, back * k_hat


def _ndcg_one_based(ranks, k):
    with np.errstate(divide="ignore"):
        return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 1.0), 0.0)))


# exercise -> [(the mistake, what to change, the wrong computation on the case's arguments)]
MISTAKES = {
    "tanh_backward": [
        ("y not squared", "d tanh(x)/dx = 1 - tanh(x)^2 = 1 - y^2", lambda y, g: g * (1 - y)),
        ("tanh applied twice", "y is already tanh(x): use 1 - y^2", lambda y, g: g * (1 - np.tanh(y) ** 2)),
    ],
    "softmax_backward": [
        ("the factor y missing", "the Jacobian is diag(y) - y y^T, so every term carries y_i",
         lambda y, g: g - (g * y).sum(-1, keepdims=True)),
        ("the diagonal of the Jacobian only", "the off-diagonal terms -y_i y_j couple the entries of a row",
         lambda y, g: y * (1 - y) * g),
    ],
    "layer_norm_backward": [
        ("the variance's dependence on x dropped", "subtract xhat * mean(g * xhat) as well",
         lambda xhat, r, g: r * (g - g.mean(-1, keepdims=True))),
        ("the mean's dependence on x dropped", "subtract mean(g) as well",
         lambda xhat, r, g: r * (g - xhat * (g * xhat).mean(-1, keepdims=True))),
    ],
    "causal_mask": [
        ("the directions swapped (upper triangle)", "query i may attend to keys j <= i: the lower triangle",
         lambda n: ~_tril(n, -1)),
        ("the diagonal left out", "a position may attend to itself: j <= i includes j = i",
         lambda n: _tril(n, -1)),
    ],
    "softmax_attention": [
        ("the mask ignored", "give blocked keys the score -inf (weight 0) before the softmax",
         lambda q, k, v, mask: _attention(None)(q, k, v).data),
        ("the scale 1/sqrt(d) missing", "divide the scores q k^T by sqrt(d)",
         lambda q, k, v, mask: _attention(mask, scale=False)(q, k, v).data),
    ],
    "softmax_attention_backward": [
        ("dq and dk swapped", "dq = c dS K and dk = c dS^T Q", lambda q, k, v, mask, g: _swapped_grads(
            _attention_grads(q, k, v, mask, g), 0, 1)),
        ("the scale 1/sqrt(d) missing from dq and dk", "the scores are c q k^T, so dq and dk carry c",
         lambda q, k, v, mask, g: _unscaled(_attention_grads(q, k, v, mask, g), q.shape[-1])),
    ],
    "hydra_causal_forward": [
        ("the feature map missing", "normalise q and k: phi(x) = x / max(||x||, eps)",
         lambda q, k, v: q * prefix_sum(k * v)),
        ("the eps guard missing", "phi(0) must be 0, not 0 / 0 = NaN: divide by max(||x||, eps)",
         lambda q, k, v: _unguarded(q) * prefix_sum(_unguarded(k) * v)),
        ("an exclusive prefix sum", "the sum runs over t <= i, position i included",
         lambda q, k, v: _phi(q) * (prefix_sum(_phi(k) * v) - _phi(k) * v)),
        ("the sum over every t (bidirectional)", "causal: position i may only use t <= i",
         lambda q, k, v: _phi(q) * (_phi(k) * v).sum(axis=-2, keepdims=True)),
    ],
    "hydra_causal_backward": [
        ("the sum not reversed", "the adjoint of a prefix sum is the reversed one: sum over i >= t",
         lambda qh, kh, v, g: _hydra_backward(qh, kh, v, g, reverse=False)),
        ("d_k_hat and d_v swapped", "d_k_hat_t = R_t * v_t and d_v_t = R_t * k_hat_t, R the reversed sum",
         lambda qh, kh, v, g: _swapped_grads(_hydra_backward(qh, kh, v, g), 1, 2)),
        ("d_q_hat without the prefix sum", "d_q_hat_i = g_i * sum_{t <= i} k_hat_t v_t",
         lambda qh, kh, v, g: (g * kh * v,) + _hydra_backward(qh, kh, v, g)[1:]),
    ],
    "decayed_prefix_sum": [
        ("an exclusive prefix sum (one step late)", "y_0 = x_0: add x_i before storing y_i",
         lambda x, a: _lagged(_decayed(x, a))),
        ("the decay ignored", "multiply the running sum by a at every step: y_i = a y_{i-1} + x_i",
         lambda x, a: prefix_sum(np.asarray(x, dtype=np.float64))),
        ("x_i decayed too", "x_i enters y_i with weight a^0 = 1: y_i = a y_{i-1} + x_i, not a (y_{i-1} + x_i)",
         lambda x, a: a * _decayed(x, a)),
    ],
    "decay_gradient": [
        ("the lag shift missing", "dy_t/da = y_{t-1} + a dy_{t-1}/da: pair the reversed sum with y one step back",
         lambda x, a, h: _per_feature(_decayed_reversed(h, a) * _decayed(x, a), x.shape[-1])),
        ("the sum not reversed", "the adjoint of the decayed prefix sum runs backwards: sum_{i >= t} a^(i-t) h_i",
         lambda x, a, h: _per_feature(_decayed(h, a) * _lagged(_decayed(x, a)), x.shape[-1])),
    ],
    "bidirectional_context": [
        ("the diagonal counted twice", "position t = i belongs to the earlier side (t <= i) only",
         lambda u, a0, a1: _decayed(u, a0) + _decayed_reversed(u, a1)),
        ("the directions swapped", "a0 decays the earlier positions (t <= i), a1 the later ones (t > i)",
         lambda u, a0, a1: _decayed(u, a1) + _decayed_reversed(u, a0) - u),
        ("the diagonal left out", "position t = i counts once, on the earlier side, with weight a0^0 = 1",
         lambda u, a0, a1: _decayed(u, a0) + _decayed_reversed(u, a1) - 2 * u),
    ],
    "chunk_decay_matrix": [
        ("the transpose", "P[f, i, j] is a^(i-j) for j <= i (on and below the diagonal), 0 above",
         lambda a, c: np.swapaxes(_chunk(a, c), 1, 2)),
        ("the diagonal left out", "j = i is included, with a^0 = 1",
         lambda a, c: _chunk(a, c) * ~np.eye(c, dtype=bool)),
    ],
    "attention_mask": [
        ("the padding ignored", "a key t with ids[t] = 0 is padding: False in every row",
         lambda ids, causal: np.broadcast_to(_tril(ids.shape[1]) if causal else True, (len(ids),) + (ids.shape[1],) * 2)
         ),
        ("causal ignored", "with causal=True also require t <= i",
         lambda ids, causal: np.broadcast_to((ids != 0)[:, None, :], (len(ids),) + (ids.shape[1],) * 2)),
        ("the padded queries masked instead of the padded keys", "mask the columns (keys): ids[:, None, :]",
         lambda ids, causal: (ids != 0)[:, :, None] & (_tril(ids.shape[1]) if causal else True)),
    ],
    "rank_of_target": [
        ("the exclusion ignored", "items in exclude are not candidates (the target always is one)",
         lambda s, t, ex: _rank(s, t, np.zeros_like(ex))),
        ("ties counted for the target", "a tie counts against the target: count scores >= the target's",
         lambda s, t, ex: _rank(s, t, ex) - _ties(s, t, ex)),
        ("the padding column ranked", "column 0 is padding, never a candidate",
         lambda s, t, ex: _rank(s, t, ex) + int(s[0] >= s[t] and not ex[0])),
        ("a 1-based rank", "the rank is 0-based: the best item has rank 0",
         lambda s, t, ex: _rank(s, t, ex) + 1),
    ],
    "ndcg_at_k": [
        ("a 1-based discount", "ranks are 0-based: the gain is 1 / log2(rank + 2)", _ndcg_one_based),
        ("rank <= k counted", "the top k are the ranks 0 .. k-1: count rank < k",
         lambda r, k: metrics.metrics_from_ranks(np.asarray(r), ks=(k + 1,))[f"NDCG@{k + 1}"]),
    ],
    "hit_rate_at_k": [
        ("rank <= k counted", "the top k are the ranks 0 .. k-1: count rank < k",
         lambda r, k: float(np.mean(np.asarray(r) <= k))),
        ("a count, not a rate", "average over the users", lambda r, k: float(np.sum(np.asarray(r) < k))),
    ],
}


def _same(answer, wrong) -> bool:
    answer, wrong = (answer, wrong) if isinstance(wrong, tuple) else ((answer,), (wrong,))
    if not isinstance(answer, (tuple, list)) or len(answer) != len(wrong):
        return False
    try:
        pairs = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for x, y in zip(answer, wrong)]
    except (TypeError, ValueError):
        return False
    return all(x.shape == y.shape and np.allclose(x, y, atol=1e-9, rtol=1e-7, equal_nan=True) for x, y in pairs)


def hint(name, args, answer) -> str:
    """``hint: <mistake>: <what to change>`` when ``answer`` equals one known mistake of exercise
    ``name`` on ``args`` (the failing case), else an empty string."""
    for mistake, advice, wrong in MISTAKES.get(name, []):
        try:
            with np.errstate(all="ignore"):
                matched = _same(answer, wrong(*[arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args]))
        except Exception:  # a mistake that does not apply to this case's shapes
            matched = False
        if matched:
            return f"hint: this looks like {mistake}: {advice}"
    return ""
