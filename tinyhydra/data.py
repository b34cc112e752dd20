"""Interaction data for sequential recommendation: readers, splits, batches.

The whole pipeline in one picture::

    file --read_*--> Interactions --leave_one_out--> Split --causal_batches--> CausalBatch (SASRec)
                                                          --cloze_batches---> ClozeBatch  (BERT4Rec)
                                                          --eval_inputs-----> (users, inputs, targets)

Conventions used everywhere:

* item ids are ``1..num_items``; id ``0`` is padding (and "no target");
* a user's sequence is an int64 array of item ids in time order, oldest first;
* batches are left-padded: the most recent item is always in the last column,
  so position ``-1`` is "now" for every row.

Everything random takes an explicit ``numpy.random.Generator`` (or a ``seed``),
so a run is reproducible from its seed alone.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np


class DataFormatError(ValueError):
    """A data file does not have the expected layout; names the file and the line."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class DownloadError(RuntimeError):
    """The dataset could not be downloaded or did not pass its checksum."""


@dataclass
class Interactions:
    """Every user's item sequence.

    sequences: ``sequences[u]`` is user ``u``'s int64 item ids in time order
               (``u`` is 0-based here; the files use ``u + 1``).
    num_users: ``len(sequences)``.
    num_items: items are ``1..num_items``; 0 is reserved for padding.
    """

    sequences: list[np.ndarray]
    num_users: int
    num_items: int

    @property
    def num_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))


# ----------------------------------------------------------------------------- parsing

_WHITESPACE_FIELDS = re.compile(r"[^ \t\r]+")
_DIGIT_TABLE = np.zeros(256, dtype=bool)
_DIGIT_TABLE[ord("0"):ord("9") + 1] = True


def _read_bytes(path) -> bytes:
    """Whole file as bytes, transparently gunzipping ``*.gz``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def _split_fields(line: str, sep: str | None) -> list[str]:
    return _WHITESPACE_FIELDS.findall(line) if sep is None else line.split(sep)


def _layout(columns: Sequence[str], sep: str | None) -> str:
    """How a line should look, for error messages: ``<user id> <item id>``."""
    return (" " if sep is None else sep).join(f"<{name}>" for name in columns)


def _first_bad_line(text: str, path, columns, sep, id_columns) -> DataFormatError:
    """Slow, line-by-line scan that explains why the fast parse failed."""
    layout = _layout(columns, sep)
    for lineno, line in enumerate(text.split("\n"), start=1):
        fields = _split_fields(line, sep)
        if len(fields) != len(columns):
            return DataFormatError(
                path, lineno, f"expected {len(columns)} fields {layout}, got {len(fields)}: {line!r}")
        for col, (name, field) in enumerate(zip(columns, fields)):
            if field.startswith("-") and field[1:].isascii() and field[1:].isdigit():
                return DataFormatError(path, lineno, f"{name} must be a positive integer, got {field}")
            if not (field.isascii() and field.isdigit()):
                return DataFormatError(path, lineno, f"{name} is not an integer: {field!r} in {line!r}")
            if col in id_columns and int(field) == 0:
                return DataFormatError(path, lineno, f"{name} must be a positive integer, got {field}")
    # the fast path and this scan accept exactly the same files, so this is a bug
    return DataFormatError(path, None, "could not be parsed (no bad line found; please report)")


def _fields_per_line(buf: np.ndarray, num_lines: int) -> np.ndarray:
    """(num_lines,) number of digit runs on each line of the uint8 bytes ``buf``."""
    digit = _DIGIT_TABLE[buf]
    starts = np.flatnonzero(digit & ~np.concatenate(([False], digit[:-1])))
    line_of_start = np.searchsorted(np.flatnonzero(buf == ord("\n")), starts)
    return np.bincount(line_of_start, minlength=num_lines)


def _fast_int_table(data: bytes, num_cols: int, sep: str | None) -> np.ndarray | None:
    """Vectorised parse of a well-formed file, or None if anything looks off.

    Accepts exactly what :func:`_first_bad_line` accepts (digits-only fields,
    ``num_cols`` per line), so a None here always has a line to blame.
    """
    num_lines = data.count(b"\n") + 1
    if sep is None:
        text, whitespace = data, b" \t\r\n"
    else:  # real spaces would hide empty fields once each separator becomes one space
        if b" " in data or b"\t" in data:
            return None
        text, whitespace = data.replace(sep.encode(), b" "), b" \n"
        if text.count(b" ") != (num_cols - 1) * num_lines:  # exactly num_cols-1 separators per line
            return None
    buf = np.frombuffer(text, dtype=np.uint8)
    if not np.all(_DIGIT_TABLE[buf] | np.isin(buf, np.frombuffer(whitespace, np.uint8))):
        return None
    if not np.all(_fields_per_line(buf, num_lines) == num_cols):
        return None
    return np.fromstring(text.decode("ascii"), dtype=np.int64, sep=" ").reshape(num_lines, num_cols)


def _parse_int_table(data: bytes, path, columns: Sequence[str], sep: str | None = None,
                     id_columns: Sequence[int] = (0, 1)) -> np.ndarray:
    """Parse lines of non-negative integers into an int64 table (num_lines, len(columns)).

    sep=None: fields separated by spaces/tabs (any number); otherwise by exactly ``sep``.
    ``id_columns`` must be >= 1. Fast path: one vectorised validation of the bytes and
    one ``np.fromstring``; only when it fails are the lines scanned in Python, to name
    the first bad line. No line is ever skipped (blank lines are errors too).
    """
    data = data.replace(b"\r\n", b"\n").rstrip(b"\n")  # a final newline is not a line
    if not data.strip():
        raise DataFormatError(path, 1, f"file is empty (expected lines of {_layout(columns, sep)})")
    table = _fast_int_table(data, len(columns), sep)
    if table is not None and np.all(table[:, list(id_columns)] > 0):
        return table
    raise _first_bad_line(data.decode("latin-1"), path, columns, sep, set(id_columns))


def _dense_ids(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Map ids to 1..n by sorted value. Ids that are already exactly 1..n stay unchanged."""
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64) + 1, len(unique)


def _group_by_user(users: np.ndarray, items: np.ndarray, num_users: int) -> list[np.ndarray]:
    """Split ``items`` into per-user arrays; users are dense 1..num_users, rows already in time order."""
    order = np.argsort(users, kind="stable")  # stable: keeps each user's time order
    counts = np.bincount(users, minlength=num_users + 1)[1:]
    return np.split(items[order], np.cumsum(counts)[:-1])


# ----------------------------------------------------------------------------- readers

def read_sasrec_txt(path) -> Interactions:
    """Read SASRec's ``user item`` format (one interaction per line, ``.gz`` allowed).

    Lines must already be in time order per user (lines of different users may
    interleave). Ids that are exactly ``1..max`` are kept as they are (the case for
    SASRec's files); otherwise users and items are remapped to 1..n by sorted id.
    Fields may be separated by any spaces or tabs. Raises :class:`DataFormatError`
    naming the file and line for an empty file, a line without exactly two fields,
    a non-integer field, or an id <= 0.
    """
    table = _parse_int_table(_read_bytes(path), path, ("user id", "item id"))
    users, num_users = _dense_ids(table[:, 0])
    items, num_items = _dense_ids(table[:, 1])
    return Interactions(_group_by_user(users, items, num_users), num_users, num_items)


def _counts_per_row(ids: np.ndarray) -> np.ndarray:
    """For each entry, how often its value occurs in ``ids``."""
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return counts[inverse]


def read_movielens_ratings(path, min_count: int = 5) -> Interactions:
    """Read GroupLens ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) or ``ml-1m.zip``.

    Follows SASRec's preprocessing: every rating is an implicit interaction; one
    filtering pass keeps the lines whose user AND item each have >= ``min_count``
    ratings in the raw file (counted once, before filtering, not iterated to a
    fixed point); each user's items are sorted by timestamp (stable: ties keep file
    order). New ids: users 1..U in ascending original UserID; items 1..I in order of
    first appearance in the filtered lines in file order. (SASRec's published
    ``ml-1m.txt`` numbers users in another order, so its ids differ from these; its
    sequences should match up to renaming and the order of equal timestamps.)
    """
    path_str = str(path)
    if path_str.endswith(".zip"):
        member = "ml-1m/ratings.dat"
        with zipfile.ZipFile(path) as archive:
            if member not in archive.namelist():
                raise DataFormatError(path, None, f"zip archive has no {member!r}")
            data, where = archive.read(member), f"{path}:{member}"
    else:
        data, where = _read_bytes(path), path_str
    table = _parse_int_table(data, where, ("UserID", "MovieID", "Rating", "Timestamp"), sep="::")
    users, items, times = table[:, 0], table[:, 1], table[:, 3]

    keep = (_counts_per_row(users) >= min_count) & (_counts_per_row(items) >= min_count)
    users, items, times = users[keep], items[keep], times[keep]
    if len(users) == 0:
        raise DataFormatError(where, None, f"no user and item has >= {min_count} ratings")

    users, num_users = _dense_ids(users)
    unique, first_row, inverse = np.unique(items, return_index=True, return_inverse=True)
    new_id = np.empty(len(unique), dtype=np.int64)
    new_id[np.argsort(first_row)] = np.arange(1, len(unique) + 1)  # first appearance -> 1, 2, ...
    items = new_id[inverse]

    by_time = np.argsort(times, kind="stable")  # grouping by user below is stable too
    return Interactions(_group_by_user(users[by_time], items[by_time], num_users), num_users, len(unique))


def load_dataset(path) -> Interactions:
    """Pick the reader from the file name: ``*.zip`` / ``*.dat[.gz]`` -> GroupLens, ``*.txt[.gz]`` -> SASRec."""
    name = os.path.basename(str(path)).lower()
    if name.endswith((".zip", ".dat", ".dat.gz")):
        return read_movielens_ratings(path)
    if name.endswith((".txt", ".txt.gz")):
        return read_sasrec_txt(path)
    raise ValueError(
        f"don't know how to read {path}: expected a SASRec '.txt'/'.txt.gz' file "
        "('user item' per line) or GroupLens 'ratings.dat' / 'ml-1m.zip'")


def write_sasrec_txt(interactions: Interactions, path) -> None:
    """Write SASRec's ``user item`` format (users 1-based); gzip if ``path`` ends in ``.gz``.

    Users with an empty sequence have no line and so do not survive a round trip.
    """
    lengths = [len(s) for s in interactions.sequences]
    users = np.repeat(np.arange(1, interactions.num_users + 1), lengths)
    items = np.concatenate(interactions.sequences) if interactions.sequences else np.zeros(0, np.int64)
    text = "".join(f"{u} {i}\n" for u, i in zip(users.tolist(), items.tolist()))
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="ascii", compresslevel=6) as f:  # 9 is ~7x slower
            f.write(text)
    else:
        Path(path).write_text(text, encoding="ascii")


# ----------------------------------------------------------------------------- download

ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ML1M_MD5 = "c4d9eecfca2ab87c1945afe126590906"


def default_cache_dir() -> Path:
    """``$TINYHYDRA_CACHE`` if set, else ``~/.cache/tinyhydra``."""
    return Path(os.environ.get("TINYHYDRA_CACHE") or Path.home() / ".cache" / "tinyhydra")


def _md5(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_ml1m(cache_dir=None, timeout: float = 10) -> Path:
    """Return the path of ``ml-1m.zip`` in the cache, downloading it first if needed.

    An existing file with the right md5 is reused (no network). The download goes
    to a temporary file in the cache directory that replaces the target only after
    its md5 checks out, so an interrupted or corrupt download never sits at the
    target path. ``timeout`` (seconds) bounds each socket operation, so without a
    network this fails within seconds, saying where to put the file by hand.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / "ml-1m.zip"
    manual = (f"Download {ML1M_URL} by hand and save it as {target}, "
              "or pass a local file with --data PATH.")
    if target.exists():
        found = _md5(target)
        if found == ML1M_MD5:
            return target
        # not ours to delete: somebody put it there
        raise DownloadError(f"{target} exists but its md5 is {found}, expected {ML1M_MD5}. "
                            f"Delete it to download again. {manual}")

    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix="ml-1m.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(ML1M_URL, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        found = _md5(tmp)
        if found != ML1M_MD5:
            raise DownloadError(f"downloaded {ML1M_URL} but its md5 is {found}, expected {ML1M_MD5} "
                                f"(file discarded). {manual}")
        os.replace(tmp, target)  # atomic: the target is either absent or complete
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # timeouts, refused, disk
        raise DownloadError(f"could not download {ML1M_URL}: {exc}. {manual}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


# ----------------------------------------------------------------------------- split

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


# ----------------------------------------------------------------------------- batching helpers

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
    negatives: np.ndarray  # (B, L, N) items the user never trained on, 0 where target is 0


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
    the user's training sequence. Users with fewer than 2 training items are skipped.
    """
    users = np.array([u for u, s in enumerate(split.train) if len(s) >= 2], dtype=np.int64)
    _check_probability("random_window_prob", random_window_prob)  # now, not at the first batch

    def make_batch(batch_users: np.ndarray) -> CausalBatch:
        seqs = [split.train[u] for u in batch_users]
        windows = training_windows(seqs, max_len + 1, rng, random_window_prob)
        inputs = pad_left([w[:-1] for w in windows], max_len)
        targets = pad_left([w[1:] for w in windows], max_len)
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
    whole = [np.concatenate([split.train[u], [split.valid_target[u], split.test_target[u]]])
             for u in users]
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


# ----------------------------------------------------------------------------- synthetic data

def synthetic_interactions(num_users: int, num_items: int, min_len: int, max_len: int,
                           seed: int = 0) -> Interactions:
    """Random walks over item ids: a learnable toy dataset for tests and notebooks.

    Each user starts at a random item and moves forward by 1 (70%), 2 (20%) or
    3 (10%) ids at each step, wrapping around ``num_items``. So the next item is
    mostly ``last + 1``: a sequential model should beat popularity easily.
    Lengths are uniform in ``[min_len, max_len]``.
    """
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=num_users)
    starts = rng.integers(0, num_items, size=num_users)
    steps = rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1], size=int(lengths.sum()))
    first = np.cumsum(lengths) - lengths          # index of each user's first item
    steps[first] = 0                              # the first item is the start itself
    walked = np.cumsum(steps)
    user = np.repeat(np.arange(num_users), lengths)
    items = (starts[user] + walked - walked[first][user]) % num_items + 1
    return Interactions(np.split(items.astype(np.int64), np.cumsum(lengths)[:-1]), num_users, num_items)
