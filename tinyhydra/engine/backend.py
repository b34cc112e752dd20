"""The one place that knows NumPy from CuPy.

Every other module asks this one for the array library that owns its data
(``get_array_module(x)``), and never imports ``cupy`` itself. The choice is made
from the array, as in DeZero's ``cuda.py``: a ``cupy.ndarray`` selects CuPy, anything
else selects NumPy. CuPy is optional: it is imported lazily, and asking for the GPU
without it raises a :class:`BackendError` that names the missing piece.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from ..errors import BackendError

_cupy = None            # the cupy module once imported successfully
_cupy_error = None      # why importing / using cupy failed, for the error message


def _load_cupy():
    """Import cupy once; remember why it failed so errors can say so."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy  # the only cupy import in the library

        cupy.cuda.runtime.getDeviceCount()  # raises without a driver or a GPU
        _cupy = cupy
    except Exception as exc:  # ImportError, CUDARuntimeError, ...
        _cupy_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _load_cupy() is not None


def require_cupy():
    """Return the cupy module or raise a readable error naming what is missing."""
    cupy = _load_cupy()
    if cupy is None:
        raise BackendError(
            "device 'gpu' needs CuPy and a CUDA GPU, but CuPy could not be used "
            f"({_cupy_error}). Install it with `pip install 'tinyhydra[gpu]'` "
            "(cupy-cuda12x) or a CuPy build matching your CUDA version, or use the CPU."
        )
    return cupy


def is_gpu_array(array) -> bool:
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a cupy array, else ``numpy``."""
    for array in arrays:
        if is_gpu_array(array):
            return _cupy
    return np


def elementwise(formula):
    """Decorator: one elementwise formula for both backends, one GPU kernel on CuPy.

    ``formula(xp, *args)`` is written with operators, Python scalars and ``xp``'s ufuncs
    (``xp.tanh``, ``xp.sqrt``, ...) and returns an array, a tuple of arrays, or nothing
    when it writes into its arguments in place (``a *= b``); no reductions, indexing,
    reshapes or branches on values. Called as ``formula(*args)``, it runs on the
    array module of its arguments: on NumPy exactly as written (one NumPy call per
    operation: the reference), on CuPy traced once per dtype and rank by ``cupy.fuse``
    into ONE kernel instead of one kernel per operation. Arguments are arrays, Python
    scalars or None; not NumPy arrays next to CuPy arrays. A term of scalars alone
    (``1 - beta``) is computed by the caller and passed in: inside a fused kernel two
    Python scalars meet in float16.
    """
    kernels = {}  # array module -> its fused kernel (or, where fusing failed, the formula)

    @functools.wraps(formula)
    def run(*args):
        xp = get_array_module(*args)
        if xp is np:
            return formula(np, *args)
        if xp not in kernels:  # traced and compiled at its first call
            kernels[xp] = xp.fuse(kernel_name=f"tinyhydra_{formula.__name__}")(functools.partial(formula, xp))
        try:
            return kernels[xp](*args)
        except Exception as exc:  # a CuPy that cannot fuse it: one kernel per operation
            unfused = functools.partial(formula, xp)
            result = unfused(*args)  # an error of the arguments themselves is raised here
            warnings.warn(f"cupy.fuse failed on {formula.__name__} ({type(exc).__name__}: {exc}); "
                          "running it one kernel per operation", RuntimeWarning, stacklevel=2)
            kernels[xp] = unfused
            return result

    return run


def device_of(array) -> str:
    return "gpu" if is_gpu_array(array) else "cpu"


def check_device(device: str) -> str:
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return device


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ('cpu' or 'gpu'); no copy when already there."""
    check_device(device)
    if device == "gpu":
        return require_cupy().asarray(array)
    return as_numpy(array)


def as_numpy(array) -> np.ndarray:
    """A host ``numpy.ndarray`` of ``array`` (a device-to-host copy for cupy arrays)."""
    if is_gpu_array(array):
        return array.get()
    return np.asarray(array)


def at_least_float32(array):
    """``array`` in float32 if it is float16, else ``array`` itself (no copy).

    float16 overflows at 65504 and keeps ~3 digits, so a sum of squares of inputs
    around 300 is inf; ops that reduce (norms, softmax) compute in float32 and cast
    their result back to float16.
    """
    if array.dtype.kind == "f" and array.dtype.itemsize < 4:
        return array.astype("float32")
    return array


def xp_for_device(device: str):
    """The array module that lives on ``device``."""
    return require_cupy() if check_device(device) == "gpu" else np


def scatter_add(target, indices, values) -> None:
    """In place: ``target[indices[n]] += values[n]``, repeated indices accumulating.

    ``target`` (V, ...), ``indices`` (N,) ints in [-V, V), ``values`` (N, ...).
    CuPy: atomic adds (:func:`index_add`). NumPy: ``np.add.at`` is a slow per-element loop, so
    the ids are sorted once and contiguous runs are summed with ``np.add.reduceat``.
    """
    if is_gpu_array(target):
        index_add(target, indices, values)  # atomic adds on the GPU are fast as they are
        return
    if indices.size == 0:
        return
    if indices.min() < 0:  # -1 and V - 1 name one row: make them one id before sorting
        indices = np.where(indices < 0, indices + target.shape[0], indices)
    if indices.size == 1 or (indices[1:] > indices[:-1]).all():  # distinct and sorted already
        target[indices] += values
        return
    order = np.argsort(indices, kind="stable")
    sorted_ids = indices[order]
    run_starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    target[sorted_ids[run_starts]] += np.add.reduceat(values[order], run_starts, axis=0)


def index_add(target, index, values) -> None:
    """In place: ``target[index] += values`` for any NumPy-style index, repeats accumulating.

    CuPy >= 13 has ``cupy.add.at`` (atomic adds) and deprecates ``cupyx.scatter_add``,
    which older CuPy versions need instead.
    """
    if is_gpu_array(target):
        add_at = getattr(_cupy.add, "at", None)
        if add_at is None:
            import cupyx

            add_at = cupyx.scatter_add
        add_at(target, index, values)
    else:
        np.add.at(target, index, values)


def synchronize(array_module=None) -> None:
    """Wait for queued GPU work (a no-op on the CPU); call before reading a clock."""
    if array_module is not None and array_module is not np:
        array_module.cuda.get_current_stream().synchronize()


def gpu_name() -> str:
    """The name of the current CUDA device, e.g. 'NVIDIA H100 80GB HBM3'."""
    cupy = require_cupy()
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux) and its core count."""
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"


def free_cached_memory(array_module=np) -> None:
    """Return CuPy's cached device blocks to the driver (a no-op on the CPU)."""
    if array_module is not np:
        array_module.get_default_memory_pool().free_all_blocks()


_seeded_generators: dict = {}


def manual_seed(seed: int) -> None:
    """Seed NumPy's and (if present) CuPy's global generators used by the library."""
    _seeded_generators.clear()
    _seeded_generators["cpu"] = np.random.default_rng(seed)
    if _load_cupy() is not None:
        _seeded_generators["gpu"] = _cupy.random.default_rng(seed)


def default_rng(array_module=np):
    """The library's generator for ``array_module`` (seeded by :func:`manual_seed`)."""
    device = "cpu" if array_module is np else "gpu"
    if device not in _seeded_generators:
        _seeded_generators[device] = array_module.random.default_rng()
    return _seeded_generators[device]
