"""Run every notebook in notebooks/ top to bottom, twice, at the small (CI) sizes.

Each run is a fresh ``python3`` kernel with ``TINYHYDRA_QUICK=1`` (and matplotlib's inline backend), with
notebooks/ as the working directory and this checkout first on PYTHONPATH
(scripts/render_notebooks.py's ``execute``); any cell error fails the test.

* With the answer key (``TINYHYDRA_SOLUTIONS=1``) every exercise's check must print PASS.
* In the student edition (``python -m course release``: no answer key), with its stubs, every
  notebook runs top to bottom and every check prints FAIL without crashing.

Each notebook's exercises are the functions of its module in course/solutions, so a
check that is dropped from a notebook, or one that passes a stub, fails here. The
committed files must also be stored without outputs and stay under 1 MiB.

Deselect with ``pytest -m "not notebooks"``.
"""
import re
from pathlib import Path

import pytest

from course import release, solutions  # course/solutions: the answer key

from .scripts import load_script

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MAX_BYTES = 1 << 20  # 1 MiB
CHECK_LINE = re.compile(r"^(PASS|FAIL) (\w+): ", re.MULTILINE)

nbformat = pytest.importorskip("nbformat")


@pytest.fixture(scope="module")
def render():
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    return load_script("scripts", "render_notebooks")


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size} bytes; notebooks must stay under {MAX_BYTES}"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; clear them before committing "
        f"(jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)})")


def stdout_of(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def check_results(nb) -> dict:
    """{exercise name: [PASS or FAIL, one per check() call]} from the notebook's printed lines."""
    results = {}
    for verdict, name in CHECK_LINE.findall(stdout_of(nb)):
        results.setdefault(name, []).append(verdict)
    return results


def exercises_of(path) -> list:
    return list(solutions.answers(f"nb{path.name[:2]}"))


def test_every_notebook_has_two_to_four_exercises():
    counts = {path.name: len(exercises_of(path)) for path in NOTEBOOKS}
    assert all(2 <= n <= 4 for n in counts.values()), counts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_with_the_answers_every_check_passes(path, render):
    nb = render.execute(path, solutions=True)
    assert check_results(nb) == {name: ["PASS"] for name in exercises_of(path)}
    assert f"tinyhydra from {ROOT / 'tinyhydra'}" in stdout_of(nb), "the kernel imported another tinyhydra"
    if path.name.startswith("04"):  # the model table keeps its columns apart
        assert re.search(r"^hydrarec-uni-decay +DecayedHydraRecUni +", stdout_of(nb), re.MULTILINE)
    if path.name.startswith("06"):  # the gaps its prose speaks of, read from results/
        assert re.search(r"ML-1M, hydrarec-bi vs bert4rec: full NDCG@10 \d\.\d{4} vs \d\.\d{4} \([+-]\d+%\)",
                         stdout_of(nb))


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition, written once for the module."""
    out = tmp_path_factory.mktemp("student") / "edition"
    release.release(out)
    return out


def execute_in(edition, name, **env):
    """The edition's notebook ``name`` run as render.execute runs ours, with the edition's own
    checkout (not this one) first on PYTHONPATH and its notebooks/ as the working directory."""
    import nbclient

    nb = nbformat.read(edition / "notebooks" / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(edition / "notebooks")}})
    render = load_script("scripts", "render_notebooks")
    with render.environment(TINYHYDRA_QUICK="1", PYTHONPATH=str(edition), **env,
                            MPLBACKEND="module://matplotlib_inline.backend_inline"):
        client.execute()
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_in_the_student_edition_every_check_fails_on_the_stubs(path, render, edition, tmp_path):
    # 05 also runs without any metrics file here: it must train its own demo and say it is not results
    nb = execute_in(edition, path.name, TINYHYDRA_RUNS=str(tmp_path / "no-runs"),
                    TINYHYDRA_RESULTS=str(tmp_path / "no-results"))
    assert check_results(nb) == {name: ["FAIL"] for name in exercises_of(path)}
    assert f"tinyhydra from {edition / 'tinyhydra'}" in stdout_of(nb), "the kernel imported another tinyhydra"
    if path.name.startswith("05"):
        assert "NOT REAL RESULTS" in stdout_of(nb)


def test_render_script_writes_html_with_the_plots(render, tmp_path):
    pytest.importorskip("nbconvert")
    written = render.main(["--quick", "--only", "02_softmax_attention", "--out", str(tmp_path)])
    assert written == [tmp_path / "02_softmax_attention.html"]
    html = written[0].read_text(encoding="utf-8")
    assert "data:image/png;base64" in html and "FAIL causal_mask" in html
