"""Run every notebook in notebooks/ top to bottom, at the small (CI) sizes.

Each notebook executes in a fresh ``python3`` kernel with ``TINYHYDRA_QUICK=1`` (small
sizes) and ``MPLBACKEND=Agg`` (no display), with notebooks/ as the working directory;
any cell error fails the test. The committed files must also be stored without
outputs and stay under 1 MiB.

Deselect with ``pytest -m "not notebooks"``.
"""
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MAX_BYTES = 1 << 20  # 1 MiB
CELL_TIMEOUT = 600  # seconds per cell

nbformat = pytest.importorskip("nbformat")


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


def execute(path, monkeypatch, **env):
    """Run the notebook at ``path`` in a fresh kernel (QUICK sizes) and return it with its outputs."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TINYHYDRA_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout's tinyhydra even where it is not pip-installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
    return nb


def stdout_of(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
    execute(path, monkeypatch)


def test_results_notebook_falls_back_to_a_labelled_demo(monkeypatch, tmp_path):
    """With no metrics files anywhere, 05 trains its own tiny runs and says they are not results."""
    path = NOTEBOOK_DIR / "05_results.ipynb"
    if not path.exists():
        pytest.skip("05_results.ipynb not present")
    nb = execute(path, monkeypatch, TINYHYDRA_RUNS=str(tmp_path / "no-runs"),
                 TINYHYDRA_RESULTS=str(tmp_path / "no-results"))
    assert "NOT REAL RESULTS" in stdout_of(nb)
