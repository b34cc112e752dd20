"""Reading interaction text files: SASRec's ``user item`` lines and one line per user.

GroupLens' MovieLens files are read in :mod:`.grouplens`; the registry of layouts and
named data sets is :mod:`.datasets`.

Both readers parse with ``np.loadtxt`` (a C parser). Only when it fails are the lines
scanned again in Python, to name the first bad line in a :class:`DataFormatError`.
A file that cannot be read at all (missing, a folder, not really gzip, truncated)
is a :class:`DataFormatError` too, naming the file and what to do.
"""
from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataFormatError

FORMATS = ("a SASRec .txt(.gz) file ('user item' per line), a per-user .txt(.gz) file "
           "('user item item ...' per line), a GroupLens ratings.dat, ratings.csv, ml-1m.zip or "
           "ml-20m.zip")
INT64_MAX = np.iinfo(np.int64).max


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


# ----------------------------------------------------------------------------- files

def _existing_file(path) -> Path:
    """``path`` as a Path, once it is known to be a file (a missing one or a folder is a
    :class:`DataFormatError` saying what to give instead)."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, None, f"is a folder; give the path of {FORMATS}")
    if not path.exists():
        raise DataFormatError(path, None, f"no such file; give the path of {FORMATS}")
    return path


def _read_bytes(path) -> bytes:
    """The whole file as bytes, transparently gunzipping ``*.gz``."""
    path = _existing_file(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except gzip.BadGzipFile:
        raise DataFormatError(path, None, "is not gzip-compressed although its name ends in .gz; "
                              "compress it with gzip or drop the .gz from its name") from None
    except (EOFError, zlib.error):
        raise DataFormatError(path, None, "the gzip data is truncated or corrupt; "
                              "copy or download the file again") from None
    except OSError as error:
        raise DataFormatError(path, None, f"cannot be read ({error.strerror or error})") from None


def _read_zip_member(path, member: str) -> bytes:
    """The bytes of ``member`` in the zip archive ``path``."""
    path = _existing_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if member not in archive.namelist():
                raise DataFormatError(path, None, f"zip archive has no {member!r}")
            return archive.read(member)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError):
        raise DataFormatError(path, None, "is not a readable zip archive (truncated download?); "
                              "download it again") from None


# ----------------------------------------------------------------------------- parsing

_WHITESPACE_FIELDS = re.compile(r"[^ \t\r]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _split_fields(line: str, sep: str | None) -> list[str]:
    return _WHITESPACE_FIELDS.findall(line) if sep is None else line.split(sep)


def _layout(columns: Sequence[str], sep: str | None) -> str:
    """How a line should look, for error messages: ``<user id> <item id>``."""
    return (" " if sep is None else sep).join(f"<{name}>" for name in columns)


def _field_error(name: str, field: str, is_id: bool, line: str) -> str | None:
    """Why ``field`` cannot be the column ``name``, or None when it can."""
    if not _INTEGER.fullmatch(field):
        return f"{name} is not an integer: {field!r} in {line!r}"
    value = int(field)
    if is_id and value <= 0:
        return f"{name} must be a positive integer, got {field}"
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        return f"{name} {field} is beyond the int64 range (largest {INT64_MAX}); renumber the ids"
    return None


def _first_bad_line(text: str, path, columns, sep, id_columns) -> DataFormatError:
    """Slow, line-by-line scan that explains why ``np.loadtxt`` or the id check failed."""
    layout = _layout(columns, sep)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue  # blank lines are skipped, as np.loadtxt does
        fields = _split_fields(line, sep)
        if len(fields) != len(columns):
            hint = ""
            if "," in line:
                hint = "; separate fields by " + ("spaces or tabs" if sep is None else repr(sep))
            return DataFormatError(
                path, lineno, f"expected {len(columns)} fields {layout}, got {len(fields)}: {line!r}{hint}")
        for col, (name, field) in enumerate(zip(columns, fields)):
            problem = _field_error(name, field, col in id_columns, line)
            if problem:
                return DataFormatError(path, lineno, problem)
    # np.loadtxt and this scan accept the same files, so getting here is a bug
    return DataFormatError(path, None, "could not be parsed (no bad line found; please report)")


def _loadtxt_table(data: bytes, num_cols: int, sep: str | None) -> np.ndarray | None:
    """(lines, num_cols) int64 of a well-formed file, or None if anything looks off."""
    if sep is not None:  # np.loadtxt splits on one character only: turn ``sep`` into a space
        s = sep.encode()
        empty_field = (s + s in data or data.startswith(s) or data.endswith(s)
                       or b"\n" + s in data or s + b"\n" in data)
        if empty_field or b" " in data or b"\t" in data:  # spaces would hide empty fields
            return None
        data = data.replace(s, b" ")
    try:
        table = np.loadtxt(io.BytesIO(data), dtype=np.int64, comments=None, ndmin=2,
                           encoding="latin-1")
    except ValueError:
        return None
    return table if table.shape[1] == num_cols else None


def _parse_int_table(data: bytes, path, columns: Sequence[str], sep: str | None = None,
                     id_columns: Sequence[int] = (0, 1)) -> np.ndarray:
    """Parse lines of integers into an int64 table (num_lines, len(columns)).

    sep=None: fields separated by spaces/tabs (any number); otherwise by exactly ``sep``.
    ``id_columns`` must be >= 1. Blank lines are skipped; every other line must have
    exactly ``len(columns)`` integer fields within the int64 range.
    """
    data = data.replace(b"\r\n", b"\n")
    if not data.strip():
        raise DataFormatError(path, 1, f"file is empty (expected lines of {_layout(columns, sep)})")
    table = _loadtxt_table(data, len(columns), sep)
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
    Fields may be separated by any spaces or tabs; blank lines are skipped. Raises
    :class:`DataFormatError` naming the file and line for an empty file, a line without
    exactly two fields, a non-integer field, an id <= 0 or one beyond the int64 range.
    """
    table = _parse_int_table(_read_bytes(path), path, ("user id", "item id"))
    users, num_users = _dense_ids(table[:, 0])
    items, num_items = _dense_ids(table[:, 1])
    return Interactions(_group_by_user(users, items, num_users), num_users, num_items)


def read_per_user_txt(path) -> Interactions:
    """Read one line per user, ``user item_1 item_2 ... item_n`` (S3-Rec's ``Beauty.txt``).

    Items are in time order; lines are users (their ids kept in line order when they are
    exactly ``1..U``, remapped to 1..U by sorted id otherwise). Items that are exactly
    ``1..I`` stay as they are, otherwise they are remapped by sorted id, as in
    :func:`read_sasrec_txt`. Raises :class:`DataFormatError` naming the file and line for a
    line without an item, a non-integer or non-positive id, or a user on two lines.
    """
    text = _read_bytes(path).replace(b"\r\n", b"\n").decode("latin-1")
    lines = [(n, line.split()) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not lines:
        raise DataFormatError(path, 1, "file is empty (expected lines of <user id> <item id> ...)")
    for lineno, fields in lines:
        if len(fields) < 2:
            raise DataFormatError(path, lineno, f"expected <user id> <item id> ..., got {fields!r}")
        for name, field in zip(("user id",) + ("item id",) * (len(fields) - 1), fields):
            problem = _field_error(name, field, True, " ".join(fields))
            if problem:
                raise DataFormatError(path, lineno, problem)
    users = np.array([int(fields[0]) for _, fields in lines], dtype=np.int64)
    unique_users, first = np.unique(users, return_index=True)
    if len(unique_users) != len(users):
        repeated = np.setdiff1d(np.arange(len(users)), first)[0]
        raise DataFormatError(path, lines[repeated][0], f"user {users[repeated]} already had a "
                              "line: this layout has one line per user (--data-format sasrec?)")
    lengths = np.array([len(fields) - 1 for _, fields in lines])
    items, num_items = _dense_ids(np.array([int(i) for _, f in lines for i in f[1:]], dtype=np.int64))
    per_line = np.split(items, np.cumsum(lengths)[:-1])
    order = np.argsort(users, kind="stable")  # users in ascending id
    return Interactions([per_line[i] for i in order], len(users), num_items)


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

