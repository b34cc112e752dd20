"""Downloading MovieLens-1M from GroupLens into a cache, checked by its md5."""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DownloadError

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

