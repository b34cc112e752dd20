"""Execute the notebooks and render them to HTML for reading without running (a course site).

    python scripts/render_notebooks.py                 # all notebooks, full sizes -> site/notebooks/
    python scripts/render_notebooks.py --quick --only 03_hydra_attention --out /tmp/site
    python scripts/render_notebooks.py --solutions     # with the answer key filled in

Each notebook runs top to bottom in a fresh kernel with notebooks/ as its working directory
and this checkout's tinyhydra first on PYTHONPATH; plots are embedded as PNG (matplotlib's inline
backend, whatever MPLBACKEND the caller has). The output
folder (default site/notebooks/) is ignored by git. tests/test_notebooks.py uses
``execute`` and ``render_html`` from here.
"""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
DEFAULT_OUT = ROOT / "site" / "notebooks"
CELL_TIMEOUT = 600  # seconds per cell


@contextlib.contextmanager
def environment(**variables):
    """os.environ with ``variables`` set (the kernel inherits it), restored afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: Path, quick: bool = True, solutions: bool = False, **env):
    """The notebook at ``path`` run top to bottom in a fresh kernel; returns it with its outputs.

    Raises nbclient's CellExecutionError (with the cell and traceback) on any error.
    ``quick``: TINYHYDRA_QUICK=1 (small sizes); ``solutions``: TINYHYDRA_SOLUTIONS=1 (the answer
    key replaces the exercise stubs); ``env``: more environment variables for the kernel.
    """
    import nbclient
    import nbformat

    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    variables = dict(TINYHYDRA_QUICK="1" if quick else "0", TINYHYDRA_SOLUTIONS="1" if solutions else "0",
                     MPLBACKEND="module://matplotlib_inline.backend_inline",  # figures as PNG outputs, no window
                     PYTHONPATH=pythonpath, **env)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    with environment(**variables):
        client.execute()
    return nb


def render_html(nb) -> str:
    """An executed notebook as one self-contained HTML page (images embedded)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .html files")
    parser.add_argument("--only", nargs="+", default=None, help="notebook names (without .ipynb) to render")
    parser.add_argument("--quick", action="store_true", help="small sizes (TINYHYDRA_QUICK=1), as CI")
    parser.add_argument("--solutions", action="store_true", help="fill the exercises with the answer key")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if args.only:
        unknown = set(args.only) - {path.stem for path in paths}
        if unknown:
            parser.error(f"no notebook named {', '.join(sorted(unknown))}; choose from "
                         + ", ".join(path.stem for path in paths))
        paths = [path for path in paths if path.stem in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = args.out / f"{path.stem}.html"
        target.write_text(render_html(execute(path, quick=args.quick, solutions=args.solutions)), encoding="utf-8")
        print(f"{path.name} -> {target}")
        written.append(target)
    return written


if __name__ == "__main__":
    main()
