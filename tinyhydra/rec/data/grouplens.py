"""GroupLens' MovieLens ratings as implicit feedback: ``ratings.dat`` (ML-1M) and
``ratings.csv`` (ML-20M), plain or inside their zip archives.

The preprocessing is SASRec's, the one the published full-ranking numbers use:

1. every rating is an interaction (implicit feedback; the rating value is dropped);
2. one filtering pass keeps the lines whose user AND item each have >= 5 ratings in the
   raw file (counted once, not iterated to a fixed point);
3. each user's items are sorted by timestamp, stably: equal timestamps keep file order,
   which in both GroupLens files is ascending movie id within a user;
4. new ids: users 1..U by ascending original id, items 1..I by first appearance in the
   filtered lines in file order.
"""
from __future__ import annotations

import io

import numpy as np

from ...errors import DataFormatError
from .readers import (
    Interactions,
    _dense_ids,
    _group_by_user,
    _parse_int_table,
    _read_bytes,
    _read_zip_member,
)

ZIP_MEMBERS = {"ml-1m.zip": "ml-1m/ratings.dat", "ml-20m.zip": "ml-20m/ratings.csv"}
CSV_HEADER = b"userId,movieId,rating,timestamp"


def _counts_per_row(ids: np.ndarray) -> np.ndarray:
    """For each entry, how often its value occurs in ``ids``."""
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return counts[inverse]


def _csv_table(data: bytes, where: str) -> np.ndarray:
    """(lines, 3) int64 user, movie, timestamp of ML-20M's ``ratings.csv`` (header first;
    the rating may be fractional, e.g. 3.5, and is not read)."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n", 1)
    if lines[0].strip() != CSV_HEADER:
        raise DataFormatError(where, 1, f"expected the header {CSV_HEADER.decode()!r}, got "
                              f"{lines[0][:60].decode('latin-1')!r}")
    body = lines[1] if len(lines) > 1 else b""
    if not body.strip():
        raise DataFormatError(where, None, "has a header but no ratings")
    try:
        table = np.loadtxt(io.BytesIO(body), dtype=np.int64, delimiter=",", usecols=(0, 1, 3),
                           comments=None, ndmin=2, encoding="latin-1")
    except ValueError:
        table = None
    if table is not None and len(table) and np.all(table[:, :2] > 0):
        return table
    for lineno, line in enumerate(body.decode("latin-1").split("\n"), start=2):  # name the line
        fields = line.split(",")
        if line.strip() and (len(fields) != 4 or not all(f.strip().isdigit() and int(f) > 0
                                                        for f in (fields[0], fields[1]))
                             or not fields[3].strip().lstrip("-").isdigit()):
            raise DataFormatError(where, lineno, "expected userId,movieId,rating,timestamp with "
                                  f"positive integer ids and an integer timestamp, got {line!r}")
    raise DataFormatError(where, None, "could not be parsed (no bad line found; please report)")


def read_movielens_ratings(path, min_count: int = 5) -> Interactions:
    """Read ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), ``ratings.csv``
    (``userId,movieId,rating,timestamp``), ``ml-1m.zip`` or ``ml-20m.zip`` with the
    preprocessing in this module's docstring. (SASRec's published ``ml-1m.txt`` numbers
    users in another order, so its ids differ from these; its sequences match up to
    renaming and the order of equal timestamps.)
    """
    name = str(path)
    member = next((m for archive, m in ZIP_MEMBERS.items() if name.endswith(archive)), None)
    if name.endswith(".zip"):
        member = member or "ml-1m/ratings.dat"
        data, where = _read_zip_member(path, member), f"{path}:{member}"
    else:
        data, where = _read_bytes(path), name
    if (member or name).endswith((".csv", ".csv.gz")):
        users, items, times = _csv_table(data, where).T
    else:
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
