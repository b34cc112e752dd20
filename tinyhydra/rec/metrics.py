"""Ranking metrics for next-item prediction (pure NumPy, no autograd).

Two protocols, both on the rank of the held-out target item:

* ``full``: the target against every item 1..V, minus the user's input history
  (the items already interacted with are not recommended again);
* ``sampled``: the target against 100 random items the user never interacted
  with (SASRec / BERT4Rec's protocol; optimistic, kept for comparison with papers).

Ranks are 0-based (0 = best) and ties are pessimistic: every other candidate
scoring >= the target counts as ahead of it, so a constant model gets the
worst rank rather than the best.

The metrics of a rank are the registry ``METRICS`` (name -> :class:`Metric`): HR@k, NDCG@k
and MRR are registered by :func:`register_metric`, the only way in; ``metrics.json``, the
training script's table, ``scripts/compare_runs.py`` and the tests read the registry, so a
new metric (Recall@20, say) is one registered function (docs/extending.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .data import Split, eval_inputs, membership_mask, sample_negatives_for_eval, seen_items


def _check_no_nan(scores: np.ndarray, name: str) -> None:
    # NaN compares False with everything, which would silently give the best rank
    if np.isnan(scores).any():
        raise ValueError(f"{name} contain NaN")


def rank_of_target(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """(U,) int64 0-based rank of each target among the candidate items.

    scores:  (U, V+1) scores for item ids 0..V; column 0 (padding) is never a candidate.
    targets: (U,) item ids in 1..V.
    exclude: optional (U, V+1) bool, True = not a candidate (e.g. history from
             :func:`tinyhydra.rec.data.membership_mask`). The target itself is never excluded.
    rank = number of other candidates with score >= the target's score.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    num_users, num_cols = scores.shape
    if targets.shape != (num_users,) or targets.min(initial=1) < 1 or targets.max(initial=1) >= num_cols:
        raise ValueError(f"targets must be ({num_users},) item ids in 1..{num_cols - 1}")
    if exclude is not None and np.shape(exclude) != scores.shape:
        raise ValueError(f"exclude must have the scores' shape {scores.shape}, got {np.shape(exclude)}")
    _check_no_nan(scores, "scores")
    rows = np.arange(num_users)
    ahead = scores >= scores[rows, targets][:, None]
    ahead[:, 0] = False
    if exclude is not None:
        ahead &= ~exclude
    ahead[rows, targets] = False  # not ahead of itself
    return ahead.sum(axis=1)


def sampled_rank(target_scores: np.ndarray, negative_scores: np.ndarray) -> np.ndarray:
    """(U,) int64 rank of the target among itself + N negatives: #negatives scoring >= it.

    target_scores: (U,); negative_scores: (U, N).
    """
    target_scores, negative_scores = np.asarray(target_scores), np.asarray(negative_scores)
    _check_no_nan(target_scores, "target scores")
    _check_no_nan(negative_scores, "negative scores")
    return (negative_scores >= target_scores[:, None]).sum(axis=1)


@dataclass(frozen=True)
class Metric:
    """One entry of ``METRICS``: ``per_user(ranks (U,), k) -> (U,)`` values from 0-based ranks
    (the metric is their mean), a one-line ``description``; ``cutoff`` False: no k (k is None);
    ``ks``: its own cutoffs, () = the evaluation's (1, 5, 10)."""

    name: str
    per_user: Callable[[np.ndarray, int | None], np.ndarray]
    description: str
    cutoff: bool = True
    ks: tuple[int, ...] = ()


METRICS: dict[str, Metric] = {}


def register_metric(name: str, description: str, *, cutoff: bool = True, ks: Sequence[int] = ()):
    """Decorator: registers ``per_user(ranks, k)`` in ``METRICS`` under ``name`` (reported as
    ``name@k`` for each cutoff, or ``name`` when ``cutoff`` is False)."""
    if name in METRICS or "@" in name or "/" in name:
        raise ValueError(f"metric name {name!r} is taken or holds '@' or '/'; pick another")

    def register(per_user):
        METRICS[name] = Metric(name, per_user, description, cutoff, tuple(ks))
        return per_user
    return register


@register_metric("HR", "hit rate: [rank < k], the target among the top k")
def hit_rate(ranks, k):
    return ranks < k


@register_metric("NDCG", "1 / log2(rank + 2) if rank < k else 0 (one relevant item, so IDCG = 1)")
def ndcg(ranks, k):
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


@register_metric("MRR", "reciprocal rank 1 / (rank + 1), no cutoff", cutoff=False)
def reciprocal_rank(ranks, k=None):
    return 1.0 / (ranks + 1.0)


def metric_names(ks: Sequence[int] = (1, 5, 10)) -> list[str]:
    """The names a rank gets metrics under, in ``METRICS`` order: ``["HR@1", ..., "MRR"]``."""
    return [f"{metric.name}@{k}" if metric.cutoff else metric.name
            for metric in METRICS.values() for k in ((metric.ks or ks) if metric.cutoff else (None,))]


def per_user_values(ranks: np.ndarray, name: str) -> np.ndarray:
    """Each user's value of the metric ``name`` ("HR@10", "MRR": a key of ``METRICS``, with
    "@k" when it has a cutoff) from their 0-based rank; the metric is their mean."""
    kind, at, k = name.partition("@")
    metric = METRICS.get(kind)
    if metric is None or metric.cutoff != bool(at) or (at and not k.isdigit()):
        known = [f"{m.name}@K" if m.cutoff else m.name for m in METRICS.values()]
        raise ValueError(f"metric must be {' or '.join(filter(None, [', '.join(known[:-1]), known[-1]]))}, "
                         f"got {name!r}")
    return metric.per_user(np.asarray(ranks), int(k) if at else None)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Every metric of ``METRICS`` (:func:`metric_names`), averaged over users."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no ranks to average (no user has a target?)")
    return {name: float(np.mean(per_user_values(ranks, name))) for name in metric_names(ks)}


def bootstrap_means(values: np.ndarray, resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """(resamples,) means of ``values`` (U,) over sets of U users drawn with replacement."""
    rng = np.random.default_rng(seed)
    return np.concatenate([values[rng.integers(0, values.size, (n, values.size))].mean(axis=1)
                           for n in np.diff(np.r_[0:resamples:500, resamples])])  # 500 at a time


def bootstrap_interval(values: np.ndarray, resamples: int = 10_000, level: float = 0.95,
                       seed: int = 0) -> dict[str, float]:
    """How sure is one model's mean over users? values (U,): its per-user values. Returns the
    mean and the ``level`` percentile interval of the resampled means."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be per-user values (U,), got shape {values.shape}")
    low, high = np.quantile(bootstrap_means(values, resamples, seed), [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high)}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> dict[str, float]:
    """How sure is mean(b) - mean(a)? a, b (U,): two models' per-user values on the same users.

    Draws ``resamples`` sets of U users with replacement (the same users for both models:
    paired) and returns the observed difference, the ``level`` percentile interval of the
    resampled differences, and the share of resamples in which b does not beat a.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"a and b must be per-user values of the same users, got shapes {a.shape}, {b.shape}")
    diff = b - a
    means = bootstrap_means(diff, resamples, seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": float(diff.mean()), "low": float(low), "high": float(high),
            "not_better": float(np.mean(means <= 0))}


def evaluation_ranks(score_fn: Callable[[np.ndarray], np.ndarray], split: Split, which: str, max_len: int,
                     protocols: Sequence[str] = ("full", "sampled"), batch_size: int = 256, seed: int = 0,
                     append_mask_token: int | None = None, progress: bool = False,
                     num_negatives: int = 100) -> dict[str, np.ndarray]:
    """The 0-based rank of every user's ``which`` ('valid' or 'test') target, per protocol:
    ``{"full": (U,), "sampled": (U,)}``, users in :func:`tinyhydra.rec.data.eval_inputs`' order.

    score_fn: ``inputs (B, max_len) int64 -> scores (B, num_items + 1)`` NumPy array,
    the scores of the next item after each input sequence (at the last position).
    Full ranking excludes each user's input history (not the target); sampled
    ranking uses :func:`tinyhydra.rec.data.sample_negatives_for_eval` with ``seed``.
    """
    unknown = set(protocols) - {"full", "sampled"}
    if unknown or not protocols:
        raise ValueError(f"protocols must be a non-empty subset of ('full', 'sampled'), got {protocols}")
    users, inputs, targets = eval_inputs(split, which, max_len, append_mask_token)
    if len(users) == 0:
        raise ValueError(f"no user has a {which} target (all sequences shorter than 3?)")
    history = seen_items(split, users, which) if "full" in protocols else None
    negatives = (sample_negatives_for_eval(split, users, which, num_negatives, seed)
                 if "sampled" in protocols else None)

    starts = range(0, len(users), batch_size)
    if progress:
        try:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f"eval {which}", unit="batch")
        except ImportError:  # progress bars are optional
            pass
    ranks = {p: [] for p in protocols}
    for start in starts:
        rows = slice(start, start + batch_size)
        scores = np.asarray(score_fn(inputs[rows]))
        if scores.shape != (len(inputs[rows]), split.num_items + 1):
            raise ValueError(f"score_fn returned shape {scores.shape}, "
                             f"expected {(len(inputs[rows]), split.num_items + 1)}")
        if "full" in protocols:
            exclude = membership_mask(history[rows], split.num_items)
            ranks["full"].append(rank_of_target(scores, targets[rows], exclude))
        if "sampled" in protocols:
            target_scores = scores[np.arange(len(scores)), targets[rows]]
            negative_scores = np.take_along_axis(scores, negatives[rows], axis=1)
            ranks["sampled"].append(sampled_rank(target_scores, negative_scores))

    return {protocol: np.concatenate(ranks[protocol]) for protocol in protocols}


def evaluate(score_fn: Callable[[np.ndarray], np.ndarray], split: Split, which: str, max_len: int,
             protocols: Sequence[str] = ("full", "sampled"), batch_size: int = 256, seed: int = 0,
             append_mask_token: int | None = None, progress: bool = False,
             ks: Sequence[int] = (1, 5, 10), num_negatives: int = 100) -> dict[str, float]:
    """Rank metrics of a model on the ``which`` targets (:func:`evaluation_ranks`, whose
    arguments these are), e.g. ``{"full/HR@10": ..., "sampled/NDCG@10": ...}``."""
    ranks = evaluation_ranks(score_fn, split, which, max_len, protocols, batch_size, seed,
                             append_mask_token, progress, num_negatives)
    return {f"{protocol}/{name}": value
            for protocol in protocols
            for name, value in metrics_from_ranks(ranks[protocol], ks).items()}
