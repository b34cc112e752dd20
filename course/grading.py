r"""Grading: ``python -m course grade SUBMISSIONS --out grades.csv``. Teacher's material only.

An exercise scores its rubric points (:data:`POINTS`) when its answer passes, in order:

1. **no library call**: the answer, and every helper of the notebook it calls, reaches no object
   of ``tinyhydra`` or ``course`` (``F.hydra_attention``, ``tinyhydra.scan``, the reference twins,
   the checker's own loops). Notebook 06 suggests ``tinyhydra.scan``'s prefix sums for its two
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

each within :data:`TIME_LIMIT` seconds. A submission is one folder per student,
``SUBMISSIONS/<student>/<notebook>.ipynb``, the notebooks of the student edition, whose cells carry
nbgrader's metadata. :func:`grade_submissions` hands them to **nbgrader**: ``generate_assignment``
on source versions whose grade cells hold the hidden tests (one ``grade_function`` call each),
then ``autograde``, which runs every notebook top to bottom (a cell's error does not stop it) and
records each grade cell's points in its gradebook. A missing notebook or function, a crash or a
time-out scores 0 on that exercise only.

nbgrader rather than otter-grader: ``otter grade`` runs each submission in a Docker container
built from an image pulled from a container registry, which the course's machines and CI cannot
reach, while nbgrader grades with a local kernel, keeps hidden tests out of the released
notebooks, and records the points of each grade cell, so one column per exercise.
"""
from __future__ import annotations

import contextlib
import csv
import dis
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tracemalloc
import types
from pathlib import Path

import numpy as np

from tinyhydra import functional as F
from tinyhydra import masking, metrics, scan

from . import exercises, solutions
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
ALLOWED = {"decay_gradient": ("tinyhydra.scan",), "bidirectional_context": ("tinyhydra.scan",)}
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


def grade_namespace(namespace: dict, module: str) -> dict:
    """{exercise: [points, why]} for the exercises of notebook module ``module`` (``"nb03"``)."""
    return {name: list(grade_function(name, namespace.get(name))) for name in solutions.answers(module)}


ASSIGNMENT = "tinyhydra"
HIDDEN_TESTS = """### BEGIN HIDDEN TESTS
from course.grading import grade_function
points, why = grade_function({name!r}, globals().get({name!r}))
assert points, why
### END HIDDEN TESTS"""
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "tinyhydra"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
"""
PREAMBLE = """# notebooks/preamble.py of the repository, for a notebook graded outside it
from pathlib import Path
_REAL = Path({real!r})
exec(compile(_REAL.read_text(), str(_REAL), "exec"))
ROOT = _REAL.parents[1]
"""


def source_notebook(path: Path) -> dict:
    """nbgrader's source version of a notebook: the student edition's cells, with the stub body as
    the solution region and the hidden tests (:func:`grade_function`) in each grade cell."""
    from .release import mark_for_grading, strip_notebook

    nb = mark_for_grading(strip_notebook(json.loads(path.read_text(encoding="utf-8"))), POINTS)
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            lines = "".join(cell["source"]).split("\n")
            first = next(i for i, line in enumerate(lines) if "YOUR CODE HERE" in line)
            last = next(i for i, line in enumerate(lines) if "raise NotImplementedError" in line)
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            lines[first:last + 1] = [f"{indent}### BEGIN SOLUTION", *lines[first:last + 1], f"{indent}### END SOLUTION"]
            cell["source"] = "\n".join(lines)
        elif meta.get("grade"):
            cell["source"] = HIDDEN_TESTS.format(name=meta["grade_id"].removeprefix("test_"))
    return nb


def _nbgrader(root: Path, *args) -> None:
    variables = dict(os.environ, PYTHONPATH=str(ROOT), TINYHYDRA_QUICK="1", TINYHYDRA_SOLUTIONS="0",
                     MPLBACKEND="Agg", TINYHYDRA_RESULTS=str(ROOT / "results"),
                     # nbgrader runs the `alembic` command installed beside this Python
                     PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=variables,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")


def _why(autograded: Path, grade_id: str) -> str:
    """The error that the grade cell ``grade_id`` of an autograded notebook printed, if any."""
    if not autograded.exists():
        return f"{autograded.name} missing"
    for cell in json.loads(autograded.read_text())["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
            return f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
    return "grade cell missing"


def grade_submissions(folder: Path, out: Path, cell_timeout: int = 300) -> list[dict]:
    """Grade every ``folder/<student>/<notebook>.ipynb`` with nbgrader's autograde; write one CSV row per
    student (a column per exercise, then the total) to ``out`` and the reasons to ``out``'s
    ``.feedback.json``."""
    from nbgrader.api import Gradebook, MissingEntry

    students = sorted(p.name for p in Path(folder).iterdir() if p.is_dir())
    rows, feedback = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root), timeout=cell_timeout))
        for place in [root / "source" / ASSIGNMENT] + [root / "submitted" / s / ASSIGNMENT for s in students]:
            place.mkdir(parents=True)
            (place / "preamble.py").write_text(PREAMBLE.format(real=str(ROOT / "notebooks" / "preamble.py")))
        for stem in NOTEBOOKS:
            nb = source_notebook(ROOT / "notebooks" / f"{stem}.ipynb")
            (root / "source" / ASSIGNMENT / f"{stem}.ipynb").write_text(json.dumps(nb, indent=1))
        _nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
        for student in students:
            for stem in NOTEBOOKS:
                if (Path(folder) / student / f"{stem}.ipynb").exists():
                    shutil.copy(Path(folder) / student / f"{stem}.ipynb", root / "submitted" / student / ASSIGNMENT)
        _nbgrader(root, "autograde", ASSIGNMENT, "--force", "--create")
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            for student in students:
                row, notes = {"student": student}, {}
                for stem, module in NOTEBOOKS.items():
                    autograded = root / "autograded" / student / ASSIGNMENT / f"{stem}.ipynb"
                    for name in solutions.answers(module):
                        try:
                            score = gradebook.find_grade(f"test_{name}", stem, ASSIGNMENT, student).score
                        except MissingEntry:
                            score = 0
                        row[name] = int(score)
                        notes[name] = "" if score else _why(autograded, f"test_{name}")
                row["total"] = sum(row[name] for name in POINTS)
                rows.append(row)
                feedback[student] = notes
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["student", *POINTS, "total"])
        writer.writeheader()
        writer.writerows(rows)
    Path(out).with_suffix(".feedback.json").write_text(json.dumps(feedback, indent=1))
    return rows
