"""A tiny profiler: wall time per Function type, forward and backward.

    with th.profile() as prof:
        loss = model.loss(batch); loss.backward()
    print(prof.table())

The engine itself has no profiling code. While a profiler is active it wraps the
``forward`` and ``backward`` of every Function class in a timer (and puts the
originals back when the block ends), so ``Function.apply`` and ``Tensor.backward``
call the timed versions without knowing it, and a run without a profiler pays
nothing. On the GPU kernels run asynchronously, so pass ``synchronize=True`` to wait
for each op before reading the clock (this slows the run, but attributes time to the
right op).
"""
from __future__ import annotations

import functools
import time
from collections import defaultdict

from . import backend
from .tensor import Function

active = None  # the Profiler currently recording, if any


def _function_classes(root=Function):
    """Every subclass of ``root``, at any depth."""
    for cls in root.__subclasses__():
        yield cls
        yield from _function_classes(cls)


class Profiler:
    def __init__(self, synchronize: bool = False):
        self.synchronize = synchronize
        self.seconds = defaultdict(float)  # (function name, "forward"/"backward") -> seconds
        self.calls = defaultdict(int)
        self._originals = []  # (class, "forward"/"backward", its own staticmethod or None)

    def record(self, name: str, phase: str, start: float, array) -> None:
        if self.synchronize:
            backend.synchronize(backend.get_array_module(array))
        key = (name, phase)
        self.seconds[key] += time.perf_counter() - start
        self.calls[key] += 1

    def _timed(self, name: str, phase: str, method):
        """``method`` (forward or backward) that also records its wall time under ``name``."""
        @functools.wraps(method)
        def timed(ctx, *args, **kwargs):
            start = time.perf_counter()
            result = method(ctx, *args, **kwargs)
            # the output array (forward) or the incoming gradient (backward) names the device
            self.record(name, phase, start, result if phase == "forward" else args[0])
            return result
        return timed

    def __enter__(self):
        global active
        if active is not None:
            raise RuntimeError("a profiler is already active; profilers do not nest")
        active = self
        classes = set(_function_classes())
        # look every method up before wrapping any, so an inherited one is timed once, under
        # the name of the class that was applied
        methods = [(cls, phase, getattr(cls, phase)) for cls in classes for phase in ("forward", "backward")]
        for cls, phase, method in methods:
            self._originals.append((cls, phase, vars(cls).get(phase)))
            setattr(cls, phase, staticmethod(self._timed(cls.__name__, phase, method)))
        return self

    def __exit__(self, *exc_info):
        global active
        for cls, phase, original in self._originals:
            if original is None:
                delattr(cls, phase)  # it was inherited
            else:
                setattr(cls, phase, original)
        self._originals.clear()
        active = None
        return False

    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def by_function(self) -> dict:
        """``{name: {"forward": s, "backward": s, "calls": n}}``, slowest first."""
        rows = defaultdict(lambda: {"forward": 0.0, "backward": 0.0, "calls": 0})
        for (name, phase), seconds in self.seconds.items():
            rows[name][phase] += seconds
            if phase == "forward":
                rows[name]["calls"] += self.calls[(name, phase)]
        return dict(sorted(rows.items(), key=lambda kv: -(kv[1]["forward"] + kv[1]["backward"])))

    def table(self, top: int = 20) -> str:
        total = self.total_seconds() or 1.0
        lines = [f"{'function':<24}{'calls':>8}{'forward ms':>12}{'backward ms':>13}{'share':>8}"]
        for name, row in list(self.by_function().items())[:top]:
            share = (row["forward"] + row["backward"]) / total
            lines.append(
                f"{name:<24}{row['calls']:>8}{1e3 * row['forward']:>12.2f}"
                f"{1e3 * row['backward']:>13.2f}{share:>8.1%}"
            )
        lines.append(f"{'total':<24}{'':>8}{1e3 * self.total_seconds():>25.2f} ms")
        return "\n".join(lines)


def profile(synchronize: bool = False) -> Profiler:
    """``with th.profile() as prof: ...`` then ``print(prof.table())``."""
    return Profiler(synchronize=synchronize)
