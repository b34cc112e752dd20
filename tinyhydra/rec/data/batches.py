"""Training batches: shuffled epochs of causal (SASRec) and cloze (BERT4Rec) instances.

Everything random takes an explicit ``numpy.random.Generator``, so the batches of a
run depend on its seed alone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from .split import Split, membership_mask, pad_left


def _sample_unseen(rng: np.random.Generator, seen: np.ndarray, shape: tuple) -> np.ndarray:
    """Items drawn uniformly (with replacement) from 1..V minus each row's ``seen`` items.

    seen: (B, V+1) bool; returns int64 of ``shape`` with ``shape[0] == B``. Rejection
    sampling: draw everything, redraw only the collisions until none is left.
    """
    num_items = seen.shape[1] - 1
    if seen[:, 1:].all(axis=1).any():
        raise ValueError("cannot sample a negative for a user who has interacted with every item")
    items = rng.integers(1, num_items + 1, size=shape)
    flat = items.reshape(-1)  # a view: writing to it fills ``items``
    row = np.arange(flat.size) // max(int(np.prod(shape[1:])), 1)  # batch row of each entry
    bad = np.flatnonzero(seen[row, flat])
    while len(bad):
        flat[bad] = rng.integers(1, num_items + 1, size=len(bad))
        bad = bad[seen[row[bad], flat[bad]]]
    return items


class Epoch:
    """One shuffled pass over ``users`` in batches of ``make_batch(user_ids)``.

    ``len()`` is the number of batches (for progress bars); the shuffle is drawn
    from ``rng`` when iteration starts, so iterating twice gives two epochs.
    """

    def __init__(self, users: np.ndarray, batch_size: int, rng: np.random.Generator,
                 make_batch: Callable[[np.ndarray], tuple]):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.users, self.batch_size, self.rng, self.make_batch = users, batch_size, rng, make_batch

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def __iter__(self) -> Iterator:
        order = self.rng.permutation(self.users)
        for start in range(0, len(order), self.batch_size):
            yield self.make_batch(order[start:start + self.batch_size])


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def training_windows(sequences: Sequence[np.ndarray], length: int, rng: np.random.Generator,
                     random_window_prob: float = 0.0) -> list[np.ndarray]:
    """The ``length`` consecutive items of each sequence that a training instance uses.

    By default a sequence longer than ``length`` keeps its last ``length`` items, so
    its earlier items are never trained on (on ML-1M with max_len 200 that is a third
    of the training interactions). With probability ``random_window_prob`` it instead
    keeps a window whose start is uniform over ``0 .. len - length`` (the last window
    included), so over the epochs every item is seen; BERT4Rec's data generation cuts
    long sequences into sliding windows for the same reason. Shorter sequences are
    kept whole. 0 draws no random numbers, so batches stay those of earlier versions.
    """
    _check_probability("random_window_prob", random_window_prob)
    if random_window_prob == 0.0:
        return [s[-length:] for s in sequences]
    excess = np.array([max(len(s) - length, 0) for s in sequences], dtype=np.int64)  # (B,)
    random_start = rng.integers(0, excess + 1)                                        # (B,)
    starts = np.where(rng.random(len(sequences)) < random_window_prob, random_start, excess)
    return [s[start:start + length] for s, start in zip(sequences, starts)]


class CausalBatch(NamedTuple):
    inputs: np.ndarray     # (B, L) item ids, left-padded with 0
    targets: np.ndarray    # (B, L) next item at each position, 0 = ignore
    negatives: np.ndarray | None  # (B, L, N) items the user never trained on, 0 where
                                  # target is 0; None when num_negatives is 0


class ClozeBatch(NamedTuple):
    inputs: np.ndarray   # (B, L) item ids with masked positions set to mask_token
    targets: np.ndarray  # (B, L) original item at masked positions, 0 = ignore


def causal_batches(split: Split, batch_size: int, max_len: int, rng: np.random.Generator,
                   num_negatives: int = 1, random_window_prob: float = 0.0) -> Epoch:
    """One epoch of SASRec training batches (:class:`CausalBatch`), users shuffled.

    For a training sequence ``s``: inputs = ``s[:-1]``, targets = ``s[1:]`` (each
    position predicts the next item), both keeping the last ``max_len`` positions
    (or, with ``random_window_prob``, those of a random window: :func:`training_windows`).
    ``num_negatives`` negatives per position are drawn uniformly from items not in
    the user's training sequence; 0 draws none (``negatives`` is None: full
    cross-entropy needs no negatives). Users with fewer than 2 training items are skipped.
    """
    users = np.array([u for u, s in enumerate(split.train) if len(s) >= 2], dtype=np.int64)
    _check_probability("random_window_prob", random_window_prob)  # now, not at the first batch

    def make_batch(batch_users: np.ndarray) -> CausalBatch:
        seqs = [split.train[u] for u in batch_users]
        windows = training_windows(seqs, max_len + 1, rng, random_window_prob)
        inputs = pad_left([w[:-1] for w in windows], max_len)
        targets = pad_left([w[1:] for w in windows], max_len)
        if num_negatives == 0:
            return CausalBatch(inputs, targets, None)
        seen = membership_mask(seqs, split.num_items)
        negatives = _sample_unseen(rng, seen, targets.shape + (num_negatives,))
        negatives[targets == 0] = 0
        return CausalBatch(inputs, targets, negatives)

    return Epoch(users, batch_size, rng, make_batch)


def cloze_batches(split: Split, batch_size: int, max_len: int, rng: np.random.Generator,
                  mask_token: int, mask_prob: float = 0.2, mask_last_prob: float = 0.0,
                  random_window_prob: float = 0.0) -> Epoch:
    """One epoch of BERT4Rec (cloze) training batches (:class:`ClozeBatch`), users shuffled.

    Takes the last ``max_len`` training items of each user (or, with
    ``random_window_prob``, a random window of them: :func:`training_windows`) and masks each real
    position with probability ``mask_prob`` (at least one per sequence: the last
    item when none was drawn). Masked inputs become ``mask_token`` (by convention
    ``num_items + 1``); targets hold the original item there and 0 elsewhere.

    ``mask_last_prob``: each sequence ALSO gets its last item masked with this
    probability. Evaluation asks for the item after the whole history, i.e. a [MASK]
    in the last column; BERT4Rec's code adds such "masked last" instances for the
    same reason. 0 (the default) draws no extra random numbers, so batches are those
    of plain cloze masking.
    Simplifications vs. BERT4Rec: no 80/10/10 replacement (a masked position is
    always ``mask_token``) and no pre-generated duplicated masks: masks are redrawn
    every epoch. Users with an empty training sequence are skipped.
    """
    if mask_token <= split.num_items:
        raise ValueError(f"mask_token {mask_token} collides with item ids 1..{split.num_items}; "
                         f"use num_items + 1 = {split.num_items + 1}")
    for name, value in (("mask_prob", mask_prob), ("mask_last_prob", mask_last_prob),
                        ("random_window_prob", random_window_prob)):
        _check_probability(name, value)
    users = np.array([u for u, s in enumerate(split.train) if len(s) >= 1], dtype=np.int64)

    def make_batch(batch_users: np.ndarray) -> ClozeBatch:
        windows = training_windows([split.train[u] for u in batch_users], max_len, rng,
                                   random_window_prob)
        items = pad_left(windows, max_len)
        masked = (rng.random(items.shape) < mask_prob) & (items != 0)  # (B, L)
        if mask_last_prob > 0:
            masked[:, -1] |= rng.random(len(items)) < mask_last_prob
        masked[~masked.any(axis=1), -1] = True  # last column is always a real item
        return ClozeBatch(np.where(masked, mask_token, items), np.where(masked, items, 0))

    return Epoch(users, batch_size, rng, make_batch)
