r"""Grading one exercise's answer: the rules and the hidden cases. Teacher's material only.

An exercise scores its rubric points (:data:`POINTS`) when its answer passes, in order:

1. **no library call**: the answer, and every helper of the notebook it calls, reaches no object
   of ``tinyhydra`` or ``course`` (``F.hydra_attention``, ``tinyhydra.attention.scan``, the reference twins,
   the checker's own loops). Notebook 06 suggests ``tinyhydra.attention.scan``'s prefix sums for its two
   sequence exercises, so there they are allowed (:data:`ALLOWED`);
2. the visible cases of :func:`course.exercises.run`;
3. the **hidden cases**: the same checks drawn with other seeds (:class:`course.checking.Seeds`),
   so other data, masks and decays, which the student has not seen, and for the exercises whose
   visible cases are fixed (masks, ranks, metrics, the chunk matrix) other lengths, padded ids,
   tied scores, rank lists and decays, and float32 inputs for three exercises (:func:`_extra_cases`);
4. for the O(L·D) exercises (:data:`LINEAR`), one long case, L = 4096, D = 4: the values must
   match the library's linear-time op, and the peak memory of the call (``tracemalloc``, which
   NumPy reports its buffers to) must stay under 64 L·D floats, where one L × L float64 array
   alone is 4096 L·D floats;

each within :data:`TIME_LIMIT` seconds; a crash or a time-out scores 0. The notebooks are run
and their points collected by nbgrader (:mod:`course.autograde`), whose hidden tests call
:func:`grade_function`.
"""
from __future__ import annotations

import contextlib
import dis
import signal
import tracemalloc
import types
from pathlib import Path

import numpy as np

from tinyhydra import functional as F
from tinyhydra.attention import masking, scan
from tinyhydra.rec import metrics

from . import exercises
from .checking import Failed, Seeds, call, expect

ROOT = Path(__file__).resolve().parents[1]
POINTS = {
    "tanh_backward": 4, "softmax_backward": 6, "layer_norm_backward": 8,
    "causal_mask": 3, "softmax_attention": 7, "softmax_attention_backward": 10,
    "hydra_causal_forward": 6, "hydra_causal_backward": 10, "decayed_prefix_sum": 6,
    "attention_mask": 5, "rank_of_target": 7,
    "ndcg_at_k": 4, "hit_rate_at_k": 2,
    "decay_gradient": 10, "bidirectional_context": 6, "chunk_decay_matrix": 6,
}
NOTEBOOKS = {"01_autograd": "nb01", "02_softmax_attention": "nb02", "03_hydra_attention": "nb03",
             "04_encoders": "nb04", "05_results": "nb05", "06_decayed_hydra": "nb06"}
ALLOWED = {"decay_gradient": ("tinyhydra.attention.scan",), "bidirectional_context": ("tinyhydra.attention.scan",)}
FORBIDDEN = ("tinyhydra", "course")
HIDDEN_OFFSET = 1000
TIME_LIMIT = 30.0  # seconds per exercise
LONG, WIDTH, MEMORY_FLOATS = 4096, 4, 64  # the O(L·D) case and its memory bound, in L·D floats


def _long_case(rng):
    q, k, v, g = (rng.standard_normal((LONG, WIDTH)) for _ in range(4))
    a, a1 = rng.uniform(0.5, 0.99, WIDTH), rng.uniform(0.5, 0.99, WIDTH)
    return q, k, v, g, a, a1


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# exercise -> (arguments from the long case, the expected output from the library's linear-time ops)
LINEAR = {
    "hydra_causal_forward": (lambda q, k, v, g, a, a1: (q, k, v),
                             lambda q, k, v: F.hydra_attention(q, k, v, causal=True).data),
    "hydra_causal_backward": (lambda q, k, v, g, a, a1: (_unit(q), _unit(k), v, g),
                              lambda qh, kh, v, g: (g * scan.prefix_sum(kh * v), scan.reverse_prefix_sum(g * qh) * v,
                                                    scan.reverse_prefix_sum(g * qh) * kh)),
    "decayed_prefix_sum": (lambda q, k, v, g, a, a1: (v, a), lambda x, a: scan.prefix_sum(x, decay=a)),
    "decay_gradient": (lambda q, k, v, g, a, a1: (v, a, g),
                       lambda x, a, h: (scan.reverse_prefix_sum(h, decay=a)[1:] * scan.prefix_sum(x, decay=a)[:-1])
                       .sum(axis=0)),
    "bidirectional_context": (lambda q, k, v, g, a, a1: (v, a, a1),
                              lambda u, a0, a1: scan.prefix_sum(u, decay=a0) + scan.reverse_prefix_sum(u, decay=a1)
                              - u),
}


def _padded_ids(rng, rows, length):
    ids = rng.integers(1, 50, (rows, length))
    for row, pad in enumerate(rng.integers(0, length, rows)):
        ids[row, :pad] = 0
    return ids


def _ranking(rng):
    scores = rng.integers(0, 6, 12).astype(float)  # ties on purpose
    exclude = rng.random(12) < 0.3
    return scores, int(rng.integers(1, 12)), exclude


def _extra_cases(name, rng) -> list:
    """(label, args, expected) hidden cases for the exercises whose visible cases draw no random data."""
    if name == "causal_mask":
        return [(f"L = {n}", (n,), np.asarray(masking.causal_mask(n))) for n in (5, 9)]
    if name == "attention_mask":
        cases = []
        for causal in (True, False):
            ids = _padded_ids(rng, 3, 6)
            keys = np.broadcast_to((ids != 0)[:, None, :], (3, 6, 6))
            cases.append((f"hidden ids, causal={causal}", (ids, causal),
                          keys & np.asarray(masking.causal_mask(6)) if causal else keys))
        return cases
    if name == "rank_of_target":
        return [(f"hidden scores {i}", (s, t, ex), metrics.rank_of_target(s[None], np.array([t]), ex[None])[0])
                for i, (s, t, ex) in enumerate(_ranking(rng) for _ in range(4))]
    if name in ("ndcg_at_k", "hit_rate_at_k"):
        key = "NDCG" if name == "ndcg_at_k" else "HR"
        cases = [(rng.integers(0, 40, 30), k) for k in (5, 20)]
        return [(f"hidden ranks, k = {k}", (r, k), metrics.metrics_from_ranks(r, ks=(k,))[f"{key}@{k}"])
                for r, k in cases]
    if name == "chunk_decay_matrix":
        a = rng.uniform(0, 1, 5)
        return [("hidden a (5,), C = 7", (a, 7), exercises.decay_matrix(a, 7))]
    if name in FLOAT32:
        shapes, extra, expected_fn = FLOAT32[name]
        arrays = tuple(rng.standard_normal(shape).astype(np.float32) if isinstance(shape, tuple) else
                       rng.uniform(0.2, 0.9, shape).astype(np.float32) for shape in shapes)
        expected = expected_fn(*(np.asarray(a, dtype=np.float64) for a in arrays))
        return [("hidden float32 inputs", arrays + extra, expected)]
    return []


# exercise -> (float32 argument shapes, an int D for a decay vector; further arguments; the expected
# output, computed in float64 from the same float32 values)
FLOAT32 = {
    "hydra_causal_forward": ([(2, 7, 3)] * 3, (), lambda q, k, v: F.hydra_attention(q, k, v, causal=True).data),
    "decayed_prefix_sum": ([(3, 6, 4), 4], (), lambda x, a: scan.prefix_sum(x, decay=a)),
    "softmax_attention": ([(2, 5, 3)] * 3, (None,), lambda q, k, v: F.softmax_attention(q, k, v).data),
}
FLOAT32_RTOL = 1e-4  # float32 arithmetic: agreement to a few ulps of float32, not of float64


def _run_extra(name, fn) -> int:
    cases = _extra_cases(name, np.random.default_rng(HIDDEN_OFFSET))
    for label, args, expected in cases:
        if label == "hidden float32 inputs":
            got = np.asarray(call(label, fn, *args), dtype=np.float64)
            if got.shape != expected.shape or not np.allclose(got, expected, rtol=FLOAT32_RTOL, atol=1e-5):
                raise Failed(f"case {label!r}: the answer does not hold in float32 (rtol {FLOAT32_RTOL:g})")
            continue
        expect(label, expected, call(label, fn, *args), "out")
    return len(cases)


class TimeLimit(Exception):
    """An exercise ran past :data:`TIME_LIMIT`."""


@contextlib.contextmanager
def time_limit(seconds):
    def stop(signum, frame):
        raise TimeLimit(f"ran past the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _forbidden(module: str, allowed) -> bool:
    return module.split(".")[0] in FORBIDDEN and not module.startswith(tuple(allowed))


def library_calls(fn, allowed=()) -> list[str]:
    """The ``tinyhydra`` and ``course`` objects that ``fn`` reaches: through the global names it
    loads (following the helpers defined beside it, same globals), through ``import`` statements
    in its body, or through ``__import__`` / ``importlib``; less those under ``allowed``."""
    found, seen, todo = [], set(), [fn]
    while todo:
        function = todo.pop()
        if id(function) in seen or not isinstance(function, types.FunctionType):
            continue
        seen.add(id(function))
        for code in _codes(function.__code__):
            for instruction in dis.get_instructions(code):
                name = instruction.argval
                if instruction.opname == "IMPORT_NAME" and _forbidden(name, allowed):
                    found.append(name)
                if instruction.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
                    continue
                if name in ("__import__", "importlib"):
                    found.append(f"a dynamic import ({name})")
                obj = function.__globals__.get(name)
                if isinstance(obj, types.FunctionType) and obj.__globals__ is function.__globals__:
                    todo.append(obj)  # a helper of the notebook: follow it
                    continue
                module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
                if isinstance(module, str) and _forbidden(module, allowed):
                    found.append(module if isinstance(obj, types.ModuleType) else f"{module}.{name}")
    return sorted(set(found))


def peak_bytes(fn, args) -> tuple[int, object]:
    """(peak bytes allocated during fn(*args), its result), measured by tracemalloc."""
    tracemalloc.start()
    try:
        result = fn(*args)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def _linear_case(name, fn) -> str:
    """'' when the long case matches within the memory bound, else why not."""
    make_args, expected_fn = LINEAR[name]
    args = make_args(*_long_case(np.random.default_rng(HIDDEN_OFFSET)))
    expected = expected_fn(*args)
    peak, answer = peak_bytes(fn, [a.copy() for a in args])
    bound = MEMORY_FLOATS * LONG * WIDTH * 8
    if peak > bound:
        return (f"peak memory {peak / 2**20:.1f} MiB at L = {LONG}, D = {WIDTH}, over the O(L·D) bound of "
                f"{bound / 2**20:.1f} MiB (one L × L array is {LONG * LONG * 8 / 2**20:.0f} MiB): avoid L × L arrays")
    pairs = zip(expected, answer) if isinstance(expected, tuple) else [(expected, answer)]
    for want, got in pairs:
        if np.shape(got) != np.shape(want) or not np.allclose(got, want, rtol=1e-6, atol=1e-8):
            return f"the long case L = {LONG} does not match the library's linear-time op"
    return ""


def grade_function(name, fn, check_library=True) -> tuple[int, str]:
    """(points, why) for one exercise's answer ``fn``: all of POINTS[name], or 0 and the reason."""
    if not callable(fn):
        return 0, f"no function {name} in the notebook: keep the stub's name"
    calls = library_calls(fn, ALLOWED.get(name, ())) if check_library else []
    if calls:
        return 0, f"calls the library's own {calls[0]}: write the computation with NumPy"
    try:
        with time_limit(TIME_LIMIT), np.errstate(all="ignore"):
            visible = exercises.run(name, fn)
            if isinstance(visible, Failed):
                return 0, f"visible case: {visible}"
            Seeds.offset = HIDDEN_OFFSET
            hidden = exercises.run(name, fn)
            Seeds.offset = 0
            if isinstance(hidden, Failed):
                return 0, f"hidden case: {hidden}"
            try:
                _run_extra(name, fn)
            except Failed as failure:
                return 0, f"hidden case: {failure}"
            why = _linear_case(name, fn) if name in LINEAR else ""
    except Exception as error:  # a time-out, or the answer failing outside a check
        return 0, f"{type(error).__name__}: {error}"
    finally:
        Seeds.offset = 0
    return (0, why) if why else (POINTS[name], "")
