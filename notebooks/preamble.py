"""What every notebook runs first: ``from preamble import start; QUICK, rng = start()``.

Kept out of the notebooks so that they do not each repeat it. ``start`` must run before
NumPy is imported when ``one_blas_thread=True``: BLAS reads its thread count once, at
NumPy's import.
"""
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the course's checks (ROOT/course) import from the repository root
    sys.path.append(str(ROOT))
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def start(one_blas_thread: bool = False, seed: int = 0):
    """Returns (QUICK, rng): QUICK is True under ``TINYHYDRA_QUICK=1`` (small sizes, what CI
    uses; the same code runs at both sizes), rng a seeded NumPy Generator. Also seeds
    tinyhydra and sets NumPy's print options.

    ``one_blas_thread``: set OPENBLAS/OMP/MKL_NUM_THREADS to 1 unless already set. The
    matrices of notebooks 03-05 are small, and timings should measure the algorithms,
    not BLAS threads competing for a busy CPU.
    """
    if one_blas_thread:
        if "numpy" in sys.modules:
            print("note: NumPy was already imported, so the BLAS thread count cannot change any more "
                  "(restart the kernel to apply it)")
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, "1")
    import numpy as np

    import tinyhydra as th

    th.manual_seed(seed)
    np.set_printoptions(precision=4, suppress=True)
    quick = os.environ.get("TINYHYDRA_QUICK", "0") == "1"
    print(f"QUICK = {quick}; tinyhydra from {Path(th.__file__).parent}")
    return quick, np.random.default_rng(seed)


def import_script(folder: str, name: str):
    """The script ROOT/<folder>/<name>.py as a module (its folder goes on sys.path, as the
    scripts' own imports of their neighbours expect): e.g. ``import_script("examples", "train_ml1m")``."""
    directory = str(ROOT / folder)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module(name)
