"""The student edition (``python -m course release OUT``, course/release.py): the library, the
visible checks and the notebooks with their stubs, and nothing of the answer key.

Its notebooks are executed with the stubs in tests/test_notebooks.py (every check prints FAIL).
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from course import release

ROOT = Path(__file__).resolve().parents[1]
ANSWER_LINE_MIN = 30  # shorter lines ("return y", "for i in range(x.shape[-2]):") name no answer
# answer lines that the library itself contains, as it must: it implements the same maths
IN_THE_LIBRARY = {"row_max = scores.max(axis=-1, keepdims=True)"}


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "edition"
    release.release(out)
    return out


def answer_lines():
    """The code lines (comments cut) of every function body of the answer key, docstrings left out."""
    lines = set()
    for path in sorted((ROOT / "course" / "solutions").glob("nb*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
                for statement in body:
                    for line in ast.get_source_segment(source, statement).splitlines():
                        code = line.split("#")[0].strip()
                        if len(code) >= ANSWER_LINE_MIN and code not in IN_THE_LIBRARY:
                            lines.add(code)
    return lines


def texts(folder):
    return {path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8", errors="replace")
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_the_edition_holds_the_library_checks_and_notebooks_only(edition):
    files = set(texts(edition))
    assert {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")} <= files
    assert {"course/__init__.py", "course/exercises.py", "course/checks_01_03.py", "course/checks_04_06.py",
            "course/checking.py", "course/mistakes.py",
            "tinyhydra/__init__.py", "notebooks/preamble.py", "pyproject.toml", "README.md"} <= files
    assert not [name for name in files if name.startswith("course/solutions") or name in (
        "course/release.py", "course/__main__.py", "course/README.md", "course/grading.py", "course/autograde.py",
        "course/site.py", "course/browser.py")]


def test_no_line_of_an_answer_appears_anywhere(edition):
    lines = answer_lines()
    assert len(lines) > 15  # the key has that many substantial lines: the scan is not vacuous
    leaks = {name: [line for line in lines if line in text] for name, text in texts(edition).items()}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_nothing_names_the_answer_key_or_its_switch(edition):
    for name, text in texts(edition).items():
        assert "solutions" not in text and "TINYHYDRA_SOLUTIONS" not in text, name


def test_the_notebooks_keep_their_stubs_and_checks(edition):
    for path in sorted((edition / "notebooks").glob("*.ipynb")):
        code = "".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                       if cell["cell_type"] == "code")
        assert "from course import check" in code and code.count("check(\"") >= 2, path.name
        assert "raise NotImplementedError" in code, path.name


def test_every_exercise_is_marked_for_nbgrader_with_its_points(edition):
    from course.grading import POINTS

    marked = {}
    for path in sorted((edition / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader")
            if meta and meta["grade"]:
                assert meta["locked"] and "".join(cell["source"]) == release.GRADE_CELL_TEXT
                marked[meta["grade_id"].removeprefix("test_")] = meta["points"]
    assert marked == POINTS


def test_a_mention_that_slips_through_stops_the_release(tmp_path, monkeypatch):
    monkeypatch.setattr(release, "STUDENT_README", "the answer key is in course/solutions")
    with pytest.raises(release.LeakError, match="README.md mentions"):
        release.release(tmp_path / "out")


def test_the_command_line_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "kept.txt").write_text("a student's work")
    done = subprocess.run([sys.executable, "-m", "course", "release", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "is not empty" in done.stderr
    assert (tmp_path / "kept.txt").read_text() == "a student's work"
