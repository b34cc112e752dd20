"""The student edition: ``python -m course release OUT``.

OUT receives what a student needs to work through the six notebooks, and nothing of the
answer key:

* the library (``tinyhydra/``, ``pyproject.toml``, ``LICENSE``), the scripts the notebooks
  import (found in the notebooks: every ``import_script(folder, name)``) and
  ``examples/train_ml1m.py`` with its app ``examples/trainer/``, with the measured
  ``results/`` that notebooks 03, 05 and 06 read;
* the visible checks (``course/`` without ``solutions/``, this tooling or the teacher's guide);
* the notebooks with their stubs, stripped of every line that imports or swaps in the answer
  key (``from course import solutions``, ``fn = solutions.use(fn)``) and of the sentences that
  point to it, each exercise marked for nbgrader (a solution cell, then a locked grade cell that
  the grader fills with its tests), and a short README.

The copy is checked as it is written: a file that still names the answer key or its
environment switch stops the release (:class:`LeakError`), so a new mention cannot slip out.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE_FILES = ("__init__.py", "checking.py", "checks_01_03.py", "checks_04_06.py", "exercises.py", "mistakes.py")
# import_script("folder", "name") in a notebook's JSON (its quotes escaped there)
_IMPORTED_SCRIPT = re.compile(r'import_script\(\\?"(\w+)\\?", \\?"(\w+)\\?"\)')


def notebook_scripts() -> tuple[str, ...]:
    """The scripts the notebooks load with ``import_script(folder, name)``, read from the notebooks."""
    found = set()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        found |= {f"{folder}/{name}.py" for folder, name in _IMPORTED_SCRIPT.findall(notebook.read_text())}
    return tuple(sorted(found))


SCRIPTS = (*notebook_scripts(), "examples/train_ml1m.py")
TOP_FILES = ("pyproject.toml", "LICENSE", "notebooks/preamble.py")
FORBIDDEN = re.compile(r"solutions|TINYHYDRA_SOLUTIONS|answer key", re.IGNORECASE)

# lines of a code cell that exist only for the answer key
_KEY_LINES = re.compile(r"^\s*(from course import solutions\b.*|(\w+) = solutions\.use\(\2\).*)$")
# sentences of the markdown that point to the answers
_KEY_SENTENCES = [
    re.compile(r"\s*The answers are in `course/solutions/nb\d\d\.py`[^.]*\.\)?\.?"),
    re.compile(r"\s*\(answers: `course/solutions/nb\d\d\.py`\)"),
    re.compile(r";\s*answers: `course/solutions/nb\d\d\.py`"),
]

STUDENT_README = """# tinyhydra: the course, student edition

Six notebooks, from autograd to a research question, each with two to four exercises.

    pip install -e ".[notebooks]"
    cd notebooks && jupyter lab

Work through them in order. An exercise is a function stub: fill in its body and run the
cell. `check(name, fn)` (from `course`) runs your function on several visible cases and
prints one line: `PASS name: ...`, or `FAIL name: ...` with the first failing case, its
shapes (and inputs, when small), the expected and the actual value at the first differing
entry, and a hint when your answer matches a known mistake.

Set `TINYHYDRA_QUICK=1` for the small sizes (every notebook then runs in seconds).

Hand the notebooks back as they are named here. Keep each exercise's function name, and leave the
cell after each exercise as it is: the teacher's grader runs its own tests there.
"""


GRADE_CELL_TEXT = "# graded by the teacher's tests (python -m course grade): leave this cell as it is"


class LeakError(RuntimeError):
    """A file of the student edition names the answer key."""


def exercise_of(cell, names):
    """The exercise whose stub ``cell`` defines (its source starts with ``def <name>(``), else None."""
    text = "".join(cell["source"])
    return next((name for name in names if cell["cell_type"] == "code" and text.startswith(f"def {name}(")), None)


def mark_for_grading(nb: dict, points: dict) -> dict:
    """nbgrader's cell metadata: each exercise cell a solution cell (grade_id = the exercise), followed
    by a locked grade cell ``test_<exercise>`` worth its points, which the grader fills with its tests."""
    cells = []
    for cell in nb["cells"]:
        cells.append(cell)
        name = exercise_of(cell, points)
        if name:
            cell["metadata"]["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                            "grade_id": name, "schema_version": 3}
            cells.append({"cell_type": "code", "id": f"grade-{name}", "execution_count": None, "outputs": [],
                          "source": GRADE_CELL_TEXT, "metadata": {"nbgrader": {
                              "solution": False, "grade": True, "locked": True, "points": points[name],
                              "grade_id": f"test_{name}", "schema_version": 3}}})
    nb["cells"] = cells
    return nb


def strip_notebook(nb: dict) -> dict:
    """The notebook without the answer key's import, its swaps, or the sentences that name it."""
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code":
            kept = [line for line in text.split("\n") if not _KEY_LINES.match(line)]
            text = "\n".join(kept).rstrip("\n")
        else:
            for pattern in _KEY_SENTENCES:
                text = pattern.sub("", text)
        cell["source"] = text.splitlines(keepends=True)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _assert_clean(out: Path) -> None:
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".toml", ".txt", ".json", ".sh", ""):
            found = FORBIDDEN.search(path.read_text(encoding="utf-8", errors="replace"))
            if found:
                raise LeakError(f"{path.relative_to(out)} mentions {found.group(0)!r}: remove the mention "
                                "or strip it in course/release.py")


def release(out: Path) -> list[Path]:
    """Write the student edition to ``out`` (a new or empty folder); returns the files written."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give a new folder to release into")
    out.mkdir(parents=True, exist_ok=True)
    for package in ("tinyhydra", "examples/trainer"):  # the library, and the app train.py imports
        for source in sorted((ROOT / package).rglob("*.py")):
            _copy(source, out / source.relative_to(ROOT))
    for name in COURSE_FILES:
        _copy(ROOT / "course" / name, out / "course" / name)
    for name in SCRIPTS + TOP_FILES:
        _copy(ROOT / name, out / name)
    for source in sorted((ROOT / "results").glob("*")):
        if source.is_file() and source.suffix in (".json", ".txt"):
            _copy(source, out / "results" / source.name)
    from .grading import POINTS

    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = mark_for_grading(strip_notebook(json.loads(source.read_text(encoding="utf-8"))), POINTS)
        (out / "notebooks").mkdir(exist_ok=True)
        (out / "notebooks" / source.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n",
                                                     encoding="utf-8")
    (out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    _assert_clean(out)
    return sorted(path for path in out.rglob("*") if path.is_file())
