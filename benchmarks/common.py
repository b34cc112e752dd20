"""Helpers shared by the benchmark scripts: timing, peak memory, fits, output.

Not a package module: a script run as ``python benchmarks/<name>.py`` has this folder
on ``sys.path`` already, so it simply does ``import common`` (tests load the scripts
with ``tests/scripts.py``, which puts the folder there). Importing this module has no
side effects; a script's ``if __name__ == "__main__": common.run(main)`` applies
``--threads`` (:func:`run`).

Timing rules used everywhere:

* a run is a Python callable; the clock is ``time.perf_counter``;
* ``warmup`` untimed runs first (page faults, BLAS thread start-up, CuPy kernel
  compilation and memory-pool growth all happen there);
* on the GPU, ``backend.synchronize(xp)`` before starting and before stopping the
  clock, so queued kernels are charged to the run that queued them;
* the reported figure is the MEDIAN of ``repeats`` runs (robust to the odd run
  that another process on the machine slowed down); all runs are kept in the JSON.
"""
from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the training app, examples/trainer

from tinyhydra.engine import backend
from trainer import cli

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"  # the one home of measurements; each benchmark writes into a folder of it
MIB = 1024.0 ** 2
GIB = 1024.0 ** 3


# ------------------------------------------------------------------------ config
def parse_config(config_class, argv=None, description: str = ""):
    """A ``config_class`` dataclass instance filled from ``--key value`` flags, by the
    library's one parser (:func:`trainer.cli.parse_config`): ``--max-gib 4`` sets
    ``max_gib``, a bool field takes ``--flag`` / ``--no-flag``, a ``list[int]`` field several
    values (``--lengths 64 128 256``), ``metadata["help"]`` is the help text. A bad flag
    ends the script with one line on stderr and exit status 2."""
    with cli.one_line_errors():
        config, _ = cli.parse_config(config_class, argv, description=description)
    return config


def run(main) -> None:
    """The command-line entry of a benchmark: apply ``--threads N`` (N > 0), then ``main()``.

    BLAS reads OPENBLAS_NUM_THREADS (and the OpenMP/MKL twins) once, when NumPy is first
    imported, which has already happened here. So when ``--threads N`` asks for other
    values than the environment holds, they are exported and the interpreter restarts
    itself (``os.execv``, same arguments), and the fresh NumPy starts N BLAS threads.
    When ``main()`` is called from Python instead (tests, notebooks), ``--threads``
    reaches PyTorch only; set OPENBLAS_NUM_THREADS in the environment there.
    """
    argv = sys.argv
    if "--threads" in argv[:-1]:
        value = argv[argv.index("--threads") + 1]
        wanted = {name: value for name in THREAD_VARIABLES}
        if value.isdigit() and int(value) > 0 and any(
                os.environ.get(name) != value for name in wanted):
            os.environ.update(wanted)
            os.execv(sys.executable, [sys.executable, *argv])
    main()


# ------------------------------------------------------------------------ device
def array_module(device: str):
    """numpy for 'cpu', cupy for 'gpu' (a readable BackendError when CuPy is missing)."""
    return backend.xp_for_device(device)


def environment(device: str) -> dict:
    """What the numbers were measured on (saved next to them in every JSON)."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "blas_thread_env": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: no mode="dicts"
        info["blas"] = "unknown"
    if device == "gpu":
        info["gpu"] = backend.gpu_name()
        info["cupy"] = backend.require_cupy().__version__
    return info


# ------------------------------------------------------------------------ timing
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: this process's CPU time


def time_runs(fn, repeats: int, warmup: int, xp=np, clock=time.perf_counter) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls, by
    ``clock`` (``time.process_time`` leaves out the time other processes had the core)."""
    for _ in range(warmup):
        fn()
    backend.synchronize(xp)
    seconds = []
    for _ in range(repeats):
        backend.synchronize(xp)
        start = clock()
        fn()
        backend.synchronize(xp)
        seconds.append(clock() - start)
    return seconds


def median(values):
    return float(statistics.median(values)) if values else None


def matmul_peak_gflops(device: str = "cpu", n: int = 2048, repeats: int = 5) -> dict:
    """The machine's own float32 GEMM speed on ``device``: best of ``repeats`` (n x n) @ (n x n).

    2 n^3 flops per product; the best run (not the median) estimates the peak.
    """
    xp = array_module(device)
    rng = np.random.default_rng(0)
    a = backend.to_device(rng.standard_normal((n, n), dtype=np.float32), device)
    b = backend.to_device(rng.standard_normal((n, n), dtype=np.float32), device)
    seconds = time_runs(lambda: a @ b, repeats=repeats, warmup=1, xp=xp)
    best = min(seconds)
    return {"n": n, "best_seconds": best, "gflops": 2.0 * n ** 3 / best / 1e9}


# ------------------------------------------------------------------------ memory
def _cupy_peak_hook(cupy):
    """A MemoryHook counting live bytes handed out by CuPy's pool (malloc +, free -) and their peak."""

    class PeakHook(cupy.cuda.MemoryHook):
        name = "tinyhydra_peak"

        def __init__(self):
            self.blocks = {}  # pointer -> size of the blocks handed out while hooked
            self.live = 0
            self.peak = 0

        def malloc_postprocess(self, **kwargs):
            self.blocks[kwargs["mem_ptr"]] = kwargs["mem_size"]
            self.live += kwargs["mem_size"]
            self.peak = max(self.peak, self.live)

        def free_postprocess(self, **kwargs):
            # blocks allocated before the hook (e.g. last step's gradients) are not counted
            self.live -= self.blocks.pop(kwargs["mem_ptr"], 0)

    return PeakHook()


def peak_memory(fn, xp=np) -> dict:
    """Peak extra memory of one call of ``fn()``, in bytes, and how it was measured.

    CPU: ``tracemalloc`` (NumPy reports every array buffer it allocates to it): the
    peak of traced memory during the call minus what was traced when it started.
    That is the high-water mark of arrays (and Python objects) created by the call;
    arrays that already existed (inputs, parameters) are not counted, BLAS's own
    scratch buffers are not either.

    GPU: a ``cupy.cuda.MemoryHook`` on the default memory pool adds the (rounded)
    size of every block the pool hands out during the call and subtracts it when the
    block is given back; the peak of that running sum is the high-water mark of the
    CuPy arrays the call creates. Memory cached by the pool, cuBLAS workspaces and
    the CUDA context are not counted.
    """
    gc.collect()
    if xp is np:
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            start, _ = tracemalloc.get_traced_memory()
            fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            if not was_tracing:
                tracemalloc.stop()
        return {"bytes": int(peak - start), "method": "tracemalloc peak - baseline"}
    cupy = xp
    backend.synchronize(xp)
    hook = _cupy_peak_hook(cupy)
    with hook:
        fn()
        backend.synchronize(xp)
    return {"bytes": int(hook.peak), "method": "cupy MemoryHook: peak live pool bytes"}


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError (NumPy) or cupy.cuda.memory.OutOfMemoryError."""
    return isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__


# ------------------------------------------------------------------------ fits
def loglog_slope(lengths, seconds, min_length: int = 0):
    """Least-squares slope of log(seconds) against log(L) over L >= ``min_length``.

    1 means time grows linearly with L, 2 quadratically. None with fewer than two
    usable points (skipped or non-positive times are left out).
    """
    points = [(math.log(n), math.log(t)) for n, t in zip(lengths, seconds)
              if t is not None and t > 0 and n >= min_length]
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    slope, _ = np.polyfit(x, y, 1)
    return float(slope)


def ratio_of(numerator, denominator):
    """numerator / denominator, or None when either is missing (a skipped point)."""
    return numerator / denominator if numerator and denominator else None


def ratio_at(lengths, seconds, long: int, short: int):
    """seconds(L=long) / seconds(L=short), None if either was not measured."""
    table = {n: t for n, t in zip(lengths, seconds) if t is not None}
    if long in table and short in table and table[short] > 0:
        return table[long] / table[short]
    return None


def crossover(lengths, fast_seconds, slow_seconds) -> dict:
    """Where ``fast`` (e.g. Hydra) becomes faster than ``slow`` (e.g. softmax).

    ``first_measured``: the first measured L from which ``fast`` stays faster at
    every larger measured L. ``interpolated``: the L where the two log-log lines
    cross between that length and the previous one (linear interpolation of
    log(t_fast / t_slow) in log L). When ``fast`` is already faster at the shortest
    length, the crossover lies below the measured range (``below_range``).
    """
    pairs = [(n, f, s) for n, f, s in zip(lengths, fast_seconds, slow_seconds)
             if f is not None and s is not None]
    result = {"first_measured": None, "interpolated": None, "below_range": False,
              "note": ""}
    if not pairs:
        result["note"] = "no length with both measured"
        return result
    faster = [f < s for _, f, s in pairs]
    # the first index from which `fast` wins at every remaining length
    first = None
    for i in range(len(pairs)):
        if all(faster[i:]):
            first = i
            break
    if first is None:
        result["note"] = f"never faster up to L={pairs[-1][0]}"
        return result
    result["first_measured"] = int(pairs[first][0])
    if first == 0:
        result["below_range"] = True
        result["note"] = f"already faster at the shortest length L={pairs[0][0]}"
        return result
    (n0, f0, s0), (n1, f1, s1) = pairs[first - 1], pairs[first]
    d0, d1 = math.log(f0 / s0), math.log(f1 / s1)  # d0 >= 0 > d1
    w = d0 / (d0 - d1) if d0 != d1 else 0.5
    result["interpolated"] = float(math.exp(math.log(n0) + w * (math.log(n1) - math.log(n0))))
    return result


# ------------------------------------------------------------------------ output
def default_out(name: str, device: str = "cpu") -> Path:
    """Where benchmark ``name`` writes without ``--out``: results/<name>_<device>/, so CPU
    and GPU numbers do not overwrite each other."""
    return RESULTS / f"{name}_{device}"


def out_dir(path) -> Path:
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(results: dict, path: Path) -> Path:
    path.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    return path


def fmt(value, spec: str = ".3g", missing: str = "-") -> str:
    """``format(value, spec)``, or ``missing`` for None."""
    return missing if value is None else format(value, spec)


def fmt_bytes(n) -> str:
    if n is None:
        return "-"
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or None if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


OUT_HELP = "output folder (default: results/<benchmark>_<device>/)"


def setup(config_class, argv, doc: str, name: str):
    """What every benchmark starts with: (config, array module, seeded rng, output folder).
    The folder is ``--out``, or :func:`default_out` of ``name`` and ``--device``; ``cfg.out``
    is set to it, so the saved config says where the numbers went."""
    cfg = parse_config(config_class, argv, description=doc.split("\n\n")[0])
    cfg.out = str(out_dir(cfg.out or default_out(name, getattr(cfg, "device", "cpu"))))
    return cfg, array_module(cfg.device), np.random.default_rng(cfg.seed), Path(cfg.out)
