"""Checkpoints: nested dicts/lists of arrays and plain values in one .npz, written atomically.

    save({"model": model.state_dict(), "optim": optimizer.state_dict(), "epoch": 3}, "ckpt.npz")
    tree = load("ckpt.npz")

Arrays become npz entries; everything else (numbers, strings, None, empty
containers) is kept in a JSON skeleton in which each array is replaced by
``{"__array__": key}``. No pickle is involved, so loading a file runs no code.
The file is written to a temporary name and renamed over the target, so an
interrupted save never leaves a half-written checkpoint. A file that cannot be read
back (missing, truncated, not a checkpoint, of a version the caller does not read)
raises :class:`CheckpointError`.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from . import backend

_ARRAY = "__array__"


def _split(tree, arrays: dict, prefix: str):
    """Return the JSON skeleton of ``tree``, collecting its arrays into ``arrays``."""
    if isinstance(tree, dict):
        return {str(k): _split(v, arrays, f"{prefix}{k}/") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, arrays, f"{prefix}{i}/") for i, v in enumerate(tree)]
    if isinstance(tree, np.ndarray) or backend.is_gpu_array(tree):
        key = prefix.rstrip("/") or "root"
        arrays[key] = backend.as_numpy(tree)
        return {_ARRAY: key}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _join(skeleton, archive):
    if isinstance(skeleton, dict):
        if set(skeleton) == {_ARRAY}:
            return archive[skeleton[_ARRAY]]
        return {k: _join(v, archive) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_join(v, archive) for v in skeleton]
    return skeleton


def save(tree, path) -> None:
    """Write ``tree`` to ``path`` (.npz) atomically."""
    path = Path(path)
    arrays: dict = {}
    skeleton = _split(tree, arrays, "")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __skeleton__=np.array(json.dumps(skeleton)), **arrays)
    os.replace(tmp, path)


def load(path, versions=None):
    """Read a tree written by :func:`save` (arrays come back as host numpy arrays).

    ``versions``: if given, the tree must be a dict whose ``"version"`` is one of them.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "__skeleton__" not in archive.files:
                raise CheckpointError(f"{path} is not a checkpoint written by tinyhydra.engine.checkpoint.save")
            skeleton = json.loads(str(archive["__skeleton__"]))
            arrays = {key: archive[key] for key in archive.files if key != "__skeleton__"}
        tree = _join(skeleton, arrays)
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error):
        # numpy's own message may advise allow_pickle=True, which would run code from the file
        raise CheckpointError(f"{path} cannot be read: it is truncated or not a checkpoint") from None
    if versions is not None:
        found = tree.get("version") if isinstance(tree, dict) else None
        if found not in versions:
            has = "has no version number" if found is None else f"has checkpoint version {found}"
            raise CheckpointError(f"{path} {has}; this tinyhydra reads version "
                                  f"{', '.join(map(str, versions))}")
    return tree
