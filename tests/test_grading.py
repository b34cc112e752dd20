"""The grader (course/grading.py; ``python -m course grade``, course/autograde.py: nbgrader's autograde
with hidden tests that call ``grade_function``): the answer key scores full marks,
the stubs 0; every listed mistake loses its exercise's points on the visible or hidden cases; an
answer that calls the library's own op, or builds an L x L array in an O(L·D) exercise, or runs
past the time limit scores 0; and a folder of submitted notebooks becomes one CSV row per student."""
import copy
import csv
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course import exercises, grading, mistakes, solutions
from tinyhydra import functional as F
from tinyhydra.attention import scan

from .test_exercises import WRONG

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = {name: fn for module in solutions.NOTEBOOK_MODULES for name, fn in solutions.answers(module).items()}


def stub(*args):
    raise NotImplementedError("fill in this function")


def test_the_rubric_covers_every_exercise_and_sums_to_100():
    assert set(grading.POINTS) == set(exercises.EXERCISES) and sum(grading.POINTS.values()) == 100


def test_the_teachers_guide_states_the_same_rubric():
    guide = (ROOT / "course" / "README.md").read_text()
    stated = {name: int(points) for name, points in re.findall(r"^\| \d \| `(\w+)` \| (\d+) \|$", guide, re.MULTILINE)}
    assert stated == grading.POINTS


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_the_key_scores_full_marks_and_the_stub_zero(name):
    assert grading.grade_function(name, ANSWERS[name]) == (grading.POINTS[name], "")
    points, why = grading.grade_function(name, stub)
    assert points == 0 and "NotImplementedError" in why


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, index", [(name, i) for name, known in sorted(mistakes.MISTAKES.items())
                                         for i in range(len(known))])
def test_every_listed_mistake_loses_the_points_on_the_cases(name, index):
    points, why = grading.grade_function(name, mistakes.MISTAKES[name][index][2], check_library=False)
    assert points == 0 and why.startswith(("visible case", "hidden case")), why


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, index", [(name, i) for name, wrongs in sorted(WRONG.items())
                                         for i in range(len(wrongs))])
def test_the_other_plausible_mistakes_lose_the_points(name, index):
    points, why = grading.grade_function(name, WRONG[name][index], check_library=False)
    assert points == 0, why


def forward_by_the_library(q, k, v):
    return F.hydra_attention(q, k, v, causal=True).data


def _helper(x, a):
    return scan.prefix_sum(x, decay=a)


def prefix_sum_through_a_helper(x, a):
    return _helper(x, a)


def prefix_sum_imported_inside(x, a):
    from tinyhydra.attention.scan import prefix_sum
    return prefix_sum(x, decay=a)


def checker_loop(x, a):
    return exercises.decayed_prefix_sum_loop(x, a)


@pytest.mark.parametrize("name, answer", [
    ("hydra_causal_forward", forward_by_the_library), ("decayed_prefix_sum", prefix_sum_through_a_helper),
    ("decayed_prefix_sum", prefix_sum_imported_inside), ("decayed_prefix_sum", checker_loop)])
def test_an_answer_calling_the_library_scores_zero(name, answer):
    assert exercises.run(name, answer) > 0  # right on every visible case: only the rule stops it
    points, why = grading.grade_function(name, answer)
    assert points == 0 and why.startswith("calls the library's own ") and "write the computation" in why


def decay_gradient_with_the_suggested_prefix_sums(x, a, h):
    back, y = scan.reverse_prefix_sum(h, decay=a), scan.prefix_sum(x, decay=a)
    return (back[..., 1:, :] * y[..., :-1, :]).reshape(-1, x.shape[-1]).sum(axis=0)


def test_notebook_06s_suggested_prefix_sums_are_allowed():
    assert grading.grade_function("decay_gradient", decay_gradient_with_the_suggested_prefix_sums) == (10, "")


def backward_with_an_l_by_l_matrix(q_hat, k_hat, v, g):
    lower = np.tril(np.ones((v.shape[-2], v.shape[-2])))  # (L, L): C[i, t] = [t <= i]
    back = np.swapaxes(lower, 0, 1) @ (g * q_hat)
    return g * (lower @ (k_hat * v)), back * v, back * k_hat


def forward_with_an_l_by_l_matrix(q, k, v):
    q_hat, k_hat = (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12) for x in (q, k))
    return q_hat * (np.tril(np.ones((q.shape[-2], q.shape[-2]))) @ (k_hat * v))


@pytest.mark.parametrize("name, answer", [("hydra_causal_backward", backward_with_an_l_by_l_matrix),
                                          ("hydra_causal_forward", forward_with_an_l_by_l_matrix)])
def test_an_l_by_l_answer_to_an_o_ld_exercise_scores_zero(name, answer):
    assert exercises.run(name, answer) > 0
    points, why = grading.grade_function(name, answer)
    assert points == 0 and why.startswith("peak memory") and "avoid L × L arrays" in why


def test_an_answer_past_the_time_limit_scores_zero(monkeypatch):
    monkeypatch.setattr(grading, "TIME_LIMIT", 0.5)

    def forever(y, g):
        while True:
            pass

    points, why = grading.grade_function("tanh_backward", forever)
    assert points == 0 and "time limit" in why


def submitted(nb, module):
    """The notebook with each exercise's stub replaced by the key's source (and the key's helpers):
    a full submission."""
    key = importlib.import_module(f"course.solutions.{module}")
    helpers = "".join(inspect.getsource(obj) + "\n\n" for name, obj in vars(key).items()
                      if inspect.isfunction(obj) and obj.__module__ == key.__name__ and name not in key.__all__)
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        for name in key.__all__:
            if cell["cell_type"] == "code" and text.startswith(f"def {name}("):
                source = helpers + inspect.getsource(getattr(key, name)) + f"\ncheck({name!r}, {name})"
                cell["source"] = source.splitlines(keepends=True)
    return nb


@pytest.mark.notebooks
def test_the_command_grades_a_folder_into_one_row_per_student(tmp_path):
    """ada hands in the six notebooks with the key's answers, bob notebook 01 as released."""
    pytest.importorskip("nbgrader")
    edition = tmp_path / "edition"
    subprocess.run([sys.executable, "-m", "course", "release", str(edition)], cwd=ROOT, check=True)
    for stem, module in grading.NOTEBOOKS.items():
        released = json.loads((edition / "notebooks" / f"{stem}.ipynb").read_text())
        (tmp_path / "subs" / "ada").mkdir(parents=True, exist_ok=True)
        (tmp_path / "subs" / "ada" / f"{stem}.ipynb").write_text(json.dumps(submitted(copy.deepcopy(released), module)))
        if module == "nb01":
            (tmp_path / "subs" / "bob").mkdir(parents=True)
            (tmp_path / "subs" / "bob" / f"{stem}.ipynb").write_text(json.dumps(released))
    out = tmp_path / "grades.csv"
    done = subprocess.run([sys.executable, "-m", "course", "grade", str(tmp_path / "subs"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert list(rows["ada"])[1:] == [*grading.POINTS, "total"]
    feedback = json.loads(out.with_suffix(".feedback.json").read_text())
    assert {name: int(rows["ada"][name]) for name in grading.POINTS} == grading.POINTS, feedback["ada"]
    assert rows["ada"]["total"] == "100" and rows["bob"]["total"] == "0"
    assert feedback["bob"]["causal_mask"] == "02_softmax_attention.ipynb missing"
    assert "NotImplementedError" in feedback["bob"]["tanh_backward"]
