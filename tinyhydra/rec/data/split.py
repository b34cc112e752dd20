"""The leave-one-out split and what evaluation feeds the model.

Per user: the last item is the test target, the one before it the validation
target, the rest is training. Evaluation inputs are left-padded histories (the most
recent item in the last column), see :func:`eval_inputs`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .readers import Interactions


@dataclass
class Split:
    """Leave-one-out split (see :func:`leave_one_out`).

    train:        per-user training sequences (list of int64 arrays).
    valid_target: (U,) int64 item to predict for validation, 0 where the user has none.
    test_target:  (U,) int64 item to predict for test, 0 where the user has none.
    num_items:    items are 1..num_items.
    """

    train: list[np.ndarray]
    valid_target: np.ndarray
    test_target: np.ndarray
    num_items: int

    @property
    def num_users(self) -> int:
        return len(self.train)

    def target(self, which: str) -> np.ndarray:
        """(U,) valid or test targets (0 = none)."""
        return {"valid": self.valid_target, "test": self.test_target}[_check_which(which)]

    def input_sequences(self, which: str, users=None) -> list[np.ndarray]:
        """Full (untruncated) input history of ``users`` (default: all) for evaluation.

        valid: the training sequence; test: the training sequence + the valid item
        (just the training sequence for a user without a valid item).
        """
        _check_which(which)
        users = range(self.num_users) if users is None else np.asarray(users).tolist()
        if which == "valid":
            return [self.train[u] for u in users]
        return [np.append(self.train[u], self.valid_target[u]) if self.valid_target[u] else self.train[u]
                for u in users]


def _check_which(which: str) -> str:
    if which not in ("valid", "test"):
        raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
    return which


def leave_one_out(interactions: Interactions) -> Split:
    """Per user: last item = test target, second-to-last = valid target, the rest = train.

    Users with fewer than 3 items keep all of them for training and get no valid
    or test target (0), exactly as SASRec's ``data_partition``.
    """
    num_users = interactions.num_users
    train = []
    valid, test = np.zeros(num_users, np.int64), np.zeros(num_users, np.int64)
    for u, seq in enumerate(interactions.sequences):
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) < 3:
            train.append(seq)
        else:
            train.append(seq[:-2])
            valid[u], test[u] = seq[-2], seq[-1]
    return Split(train, valid, test, interactions.num_items)


# ----------------------------------------------------------------------------- padding and membership

def pad_left(sequences: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """(N, max_len) int64: the last ``max_len`` items of each sequence, left-padded with 0."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    out = np.zeros((len(sequences), max_len), dtype=np.int64)
    if lengths.sum() == 0:
        return out
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    row = np.repeat(np.arange(len(sequences)), lengths)
    from_end = np.cumsum(lengths)[row] - 1 - np.arange(len(flat))  # 0 = most recent item
    keep = from_end < max_len
    out[row[keep], max_len - 1 - from_end[keep]] = flat[keep]
    return out


def membership_mask(sequences: Sequence[np.ndarray], num_items: int) -> np.ndarray:
    """(N, num_items + 1) bool: ``mask[n, i]`` is True iff item ``i`` occurs in ``sequences[n]``."""
    mask = np.zeros((len(sequences), num_items + 1), dtype=bool)
    lengths = [len(s) for s in sequences]
    if sum(lengths):
        mask[np.repeat(np.arange(len(sequences)), lengths), np.concatenate(sequences)] = True
    return mask


# ----------------------------------------------------------------------------- evaluation inputs

def eval_inputs(split: Split, which: str, max_len: int,
                append_mask_token: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs for every user that has a ``which`` target.

    Returns ``users`` (U,) 0-based user indices, ``inputs`` (U, max_len) int64 and
    ``targets`` (U,) int64. The input history is train (valid) or train + valid item
    (test), left-padded. With ``append_mask_token`` (BERT4Rec) the mask token is
    appended as the last position, after the last ``max_len - 1`` history items.
    """
    users = np.flatnonzero(split.target(which)).astype(np.int64)
    history = split.input_sequences(which, users)
    if append_mask_token is None:
        inputs = pad_left(history, max_len)
    else:
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 to append a mask token, got {max_len}")
        mask_column = np.full((len(users), 1), append_mask_token, dtype=np.int64)
        inputs = np.concatenate([pad_left(history, max_len - 1), mask_column], axis=1)
    return users, inputs, split.target(which)[users]


def seen_items(split: Split, users, which: str) -> list[np.ndarray]:
    """Items to exclude in full ranking: each user's whole input history for ``which``.

    That is train (valid) or train + valid item (test), not truncated to max_len.
    It may contain the target (repeat consumption): the metrics never exclude the target.
    """
    return split.input_sequences(which, users)


def sample_negatives_for_eval(split: Split, users, which: str, num: int = 100,
                              seed: int = 0) -> np.ndarray:
    """(U, num) int64 negatives per user for the sampled-metrics protocol (SASRec).

    Uniform over the items the user never interacted with (train, valid and test
    targets), distinct within a row (no replacement). Reproducible: depends only on
    ``seed``, ``which`` (valid and test get independent draws) and ``users``.
    Implementation: random keys over all items, seen items get +inf, keep the
    ``num`` smallest, i.e. a uniform subset; O(U * num_items) in chunks of rows.
    """
    _check_which(which)
    users = np.asarray(users, dtype=np.int64)
    rng = np.random.default_rng([seed, 0 if which == "valid" else 1])
    whole = interacted_items(split, users)
    out = np.empty((len(users), num), dtype=np.int64)
    chunk = max(1, (1 << 21) // (split.num_items + 1))  # ~16 MB of keys at a time
    for start in range(0, len(users), chunk):
        seen = membership_mask(whole[start:start + chunk], split.num_items)
        seen[:, 0] = True  # padding / "no target"
        too_few = np.flatnonzero((~seen).sum(axis=1) < num)
        if len(too_few):
            raise ValueError(f"user {users[start + too_few[0]]} has fewer than {num} unseen items")
        keys = np.where(seen, np.inf, rng.random(seen.shape))
        out[start:start + chunk] = np.argpartition(keys, num - 1, axis=1)[:, :num]
    return out


def interacted_items(split: Split, users) -> list[np.ndarray]:
    """Every item each of ``users`` interacted with: train, then the valid and test targets
    (0 where a user has none)."""
    return [np.concatenate([split.train[u], [split.valid_target[u], split.test_target[u]]])
            for u in users]


def fewest_unseen_items(sequences: Sequence[np.ndarray], num_items: int) -> int:
    """The fewest items of 1..num_items that one of ``sequences`` lacks (num_items if none).

    Sampling items a user never saw needs at least one of them per user (training
    negatives), or ``num`` (the sampled evaluation protocol).
    """
    most_seen = max((len(np.unique(s[s > 0])) for s in map(np.asarray, sequences)), default=0)
    return int(num_items - most_seen)
