"""The two extension points of the data: file layouts (``DATA_FORMATS``) and named data
sets (``DATASETS``). The training script's ``--data-format`` and ``--dataset`` choices,
the tests and ``docs/extending.md`` all read these two dicts.

A data set is a public file, its checksum, its layout, the preprocessing the literature
uses (the reader's docstring states it), the counts that preprocessing must give, and its
default sequence length (200 for the MovieLens sets, 50 for Beauty, as in SASRec and S3-Rec).
"""
from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError
from .download import ML1M_MD5, ML1M_URL, default_cache_dir, download_file
from .grouplens import read_movielens_ratings
from .readers import Interactions, _existing_file, read_per_user_txt, read_sasrec_txt


@dataclass(frozen=True)
class DataFormat:
    """A file layout: its reader, one line saying what a line of it looks like, and its
    content sniffer ``sniff(path, lines) -> bool``: whether a file whose first non-empty lines
    (text, at most 64 KiB of it, gunzipped) are ``lines`` is in this layout (``lines`` is
    read only when the sniffer asks: a zip is told by its name)."""

    read: Callable[[object], Interactions]
    layout: str
    sniff: Callable[[object, Sequence[str]], bool]


DATA_FORMATS: dict[str, DataFormat] = {}
FALLBACK_FORMAT = "sasrec"  # what a file no sniffer claims is read as (its reader names the problem)


def register_data_format(name: str, read: Callable[[object], Interactions], layout: str,
                         sniff: Callable[[object, Sequence[str]], bool]) -> None:
    """Adds a layout to ``DATA_FORMATS``: ``--data-format`` lists it, :func:`load_dataset`
    reads it and :func:`detect_format` asks its sniffer (in registration order, so after the
    built-in ones: the first that claims the file wins)."""
    if name in DATA_FORMATS or name == "auto":
        raise ValueError(f"data format {name!r} is taken; pick another name")
    DATA_FORMATS[name] = DataFormat(read, layout, sniff)


def _is_movielens(path, lines) -> bool:  # a zip, "::" or the ratings.csv header
    return str(path).endswith(".zip") or bool(lines) and ("::" in lines[0] or lines[0].startswith("userId,"))


# the first sniffer that claims a file wins: the most specific first
register_data_format("movielens", read_movielens_ratings, "GroupLens ratings.dat, ratings.csv or their "
                     "zip (ML-1M, ML-20M)", _is_movielens)
register_data_format("per-user", read_per_user_txt, "`user item item ...`: one user per line (S3-Rec)",
                     lambda path, lines: any(len(line.split()) > 2 for line in lines))
register_data_format("sasrec", read_sasrec_txt, "`user item`: one interaction per line (SASRec)",
                     lambda path, lines: bool(lines) and all(len(line.split()) == 2 for line in lines))


@dataclass(frozen=True)
class DataSet:
    """A named public data set.

    checksum: ``"<algorithm>:<hex>"`` of the downloaded file.
    counts:   (users, items, interactions) after preprocessing, what a download must give.
    """

    url: str
    filename: str
    checksum: str
    data_format: str
    max_len: int
    counts: tuple[int, int, int]
    source: str

    def download(self, cache_dir=None, timeout: float = 10) -> Path:
        """The file in the cache (``$TINYHYDRA_CACHE``, default ``~/.cache/tinyhydra``),
        downloaded and checked first if needed."""
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        return download_file(self.url, cache / self.filename, self.checksum, timeout)


DATASETS: dict[str, DataSet] = {
    "ml-1m": DataSet(
        ML1M_URL, "ml-1m.zip", f"md5:{ML1M_MD5}", "movielens", 200, (6040, 3416, 999611),
        "GroupLens MovieLens-1M; SASRec's preprocessing (Kang & McAuley 2018)"),
    "ml-20m": DataSet(
        "https://files.grouplens.org/datasets/movielens/ml-20m.zip", "ml-20m.zip",
        "md5:cd245b17a1ae2cc31bb14903e1204af3", "movielens", 200, (138493, 18345, 19984024),
        "GroupLens MovieLens-20M; counts after the >= 5 filter as reported by "
        "Klenitskiy & Vasilev 2023 (gSASRec/SASRec+), not yet checked against a download here"),
    "beauty": DataSet(
        "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/Beauty.txt",
        "Beauty.txt", "sha256:226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
        "per-user", 50, (22363, 12101, 198502),
        "Amazon Beauty 5-core reviews (McAuley et al.), S3-Rec's Beauty.txt read as it is"),
}


def _head(path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the file, gunzipped when it is gzip data."""
    path = _existing_file(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError):
        return b""  # the reader names the problem


class _Lines(Sequence):
    """The first non-empty lines of a file (:func:`_head`), read at the first look."""

    def __init__(self, path):
        self.path, self._lines = path, None

    def _read(self) -> list[str]:
        if self._lines is None:
            self._lines = [line for line in _head(self.path).decode("latin-1").split("\n")[:-1] if line.strip()]
        return self._lines

    def __getitem__(self, index):
        return self._read()[index]

    def __len__(self) -> int:
        return len(self._read())


def detect_format(path) -> str:
    """The name in ``DATA_FORMATS`` of the file's layout: the first format whose sniffer claims
    the file, else ``FALLBACK_FORMAT``. The built-in sniffers: a zip, ``::`` or the ratings.csv
    header is movielens; a line of more than two fields is per-user; two fields on every line
    read is sasrec (a per-user file whose first lines hold one item each reads the same either
    way, until a longer line)."""
    lines = _Lines(path)
    return next((name for name, entry in DATA_FORMATS.items() if entry.sniff(path, lines)), FALLBACK_FORMAT)


def load_dataset(path, data_format: str = "auto") -> Interactions:
    """Read the interactions of the file at ``path`` in ``data_format`` (a key of
    ``DATA_FORMATS``, or ``"auto"`` to detect it)."""
    if data_format == "auto":
        data_format = detect_format(path)
    if data_format not in DATA_FORMATS:
        raise UsageError(f"data format {data_format!r}: must be auto or one of "
                         f"{', '.join(DATA_FORMATS)}")
    return DATA_FORMATS[data_format].read(path)
