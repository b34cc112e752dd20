"""``python -m course grade SUBMISSIONS --out grades.csv``: the submissions graded by nbgrader.
Teacher's material only.

A submission is one folder per student, ``SUBMISSIONS/<student>/<notebook>.ipynb``: the notebooks
of the student edition, whose cells carry nbgrader's metadata (each exercise a solution cell, then a
locked grade cell worth its points). :func:`grade_submissions` builds an nbgrader course in a
temporary folder, runs ``generate_assignment`` on source versions whose grade cells hold the hidden
tests (one :func:`course.grading.grade_function` call each), copies the submissions in, runs
``autograde`` (every notebook top to bottom at the quick sizes; a cell's error does not stop it)
and reads each grade cell's points from nbgrader's gradebook. A missing notebook or function, a
crash or a time-out scores 0 on that exercise only; the rest is still graded.

nbgrader rather than otter-grader: ``otter grade`` runs each submission in a Docker container
built from an image pulled from a container registry, which the course's machines and CI cannot
reach, while nbgrader grades with a local kernel, keeps hidden tests out of the released
notebooks, and records the points of each grade cell, so one column per exercise.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import solutions
from .grading import NOTEBOOKS, POINTS, ROOT

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
