"""Downloading a data set file into a cache, checked by its checksum (``md5:…`` or ``sha256:…``)."""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ...errors import DownloadError

ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ML1M_MD5 = "c4d9eecfca2ab87c1945afe126590906"


def default_cache_dir() -> Path:
    """``$TINYHYDRA_CACHE`` if set, else ``~/.cache/tinyhydra``."""
    return Path(os.environ.get("TINYHYDRA_CACHE") or Path.home() / ".cache" / "tinyhydra")


def file_digest(path, algorithm: str) -> str:
    """The hex digest of the file at ``path`` by ``algorithm`` ("md5", "sha256")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, target, checksum: str, timeout: float = 10) -> Path:
    """Return ``target`` once it holds the file at ``url`` whose ``checksum`` is
    ``"<algorithm>:<hex>"``, downloading it first if needed.

    An existing file with the right checksum is reused (no network). The download goes to
    a temporary file beside the target that replaces it only after its checksum checks
    out, so an interrupted or corrupt download never sits at the target path. ``timeout``
    (seconds) bounds each socket operation, so without a network this fails within
    seconds, saying where to put the file by hand.
    """
    algorithm, expected = checksum.split(":")
    target = Path(target)
    manual = (f"Download {url} by hand and save it as {target}, "
              "or pass a local file with --data PATH.")
    if target.exists():
        found = file_digest(target, algorithm)
        if found == expected:
            return target
        # not ours to delete: somebody put it there
        raise DownloadError(f"{target} exists but its {algorithm} is {found}, expected {expected}. "
                            f"Delete it to download again. {manual}")

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        found = file_digest(tmp, algorithm)
        if found != expected:
            raise DownloadError(f"downloaded {url} but its {algorithm} is {found}, expected "
                                f"{expected} (file discarded). {manual}")
        os.replace(tmp, target)  # atomic: the target is either absent or complete
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # timeouts, refused, disk
        raise DownloadError(f"could not download {url}: {exc}. {manual}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def download_ml1m(cache_dir=None, timeout: float = 10) -> Path:
    """The path of GroupLens' ``ml-1m.zip`` in the cache (``cache_dir`` or
    :func:`default_cache_dir`), downloaded first if needed and checked by its md5."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return download_file(ML1M_URL, cache / "ml-1m.zip", f"md5:{ML1M_MD5}", timeout)
