"""Loading the example and benchmark scripts as modules: they are scripts, not a package."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(folder: str, name: str):
    """ROOT/<folder>/<name>.py as the module ``<folder>_<name>``; the folder goes on sys.path
    so that the script's own imports of its neighbours (benchmarks/common.py) work."""
    directory = ROOT / folder
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", directory / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module
