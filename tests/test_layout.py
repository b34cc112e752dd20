"""The layout of the package: the sub-packages (SUB_PACKAGES) read in one order, one concept per module,
within a line budget.

A module of ``tinyhydra/`` may have at most ``LINE_BUDGET`` lines; the few that need more are
listed in ``OVER_BUDGET`` with their own cap and the reason (an entry whose file is gone or
back under the budget must be removed, so the list stays honest). The whole package has one
budget, ``TOTAL_BUDGET``: a new concept finds room, a growing one is noticed.
"""
import ast
import importlib
import re
from pathlib import Path

import pytest

import tinyhydra
from tinyhydra import nn
from tinyhydra.nn import module

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyhydra"
LINE_BUDGET = 300
TOTAL_BUDGET = 6923  # the package's lines when it was split into sub-packages, plus 10%

OVER_BUDGET = {
    "engine/tensor.py": (370, "Tensor, Function and the backward loop: the engine's core in one "
                              "file, as micrograd's engine.py"),
    "engine/ops.py": (450, "every primitive Function, one short class each, read as one table"),
    "rec/models.py": (400, "the two encoders and the paper's attention variants of them"),
}
SUB_PACKAGES = ("engine", "attention", "nn", "rec")
# modules that the reading order leaves out, and why
NOT_IN_READING_ORDER = {
    "__init__.py": "the package itself",
    "optim.py": "tinyhydra.optim, PyTorch's name for nn/optim.py (a re-export)",
    "models.py": "tinyhydra.models, the short name of rec/models.py (a re-export)",
}


def package_modules():
    return sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py"))


def line_count(name):
    return len((PACKAGE / name).read_text().splitlines())


@pytest.mark.parametrize("name", package_modules())
def test_module_within_its_line_budget(name):
    cap, why = OVER_BUDGET.get(name, (LINE_BUDGET, ""))
    lines = line_count(name)
    assert lines <= cap, (
        f"tinyhydra/{name} has {lines} lines, over its budget of {cap}: split it by concept "
        f"(one module per concept), or, if it is one concept, give it a cap and a reason in "
        f"OVER_BUDGET in tests/test_layout.py"
    )


@pytest.mark.parametrize("name", sorted(OVER_BUDGET))
def test_over_budget_entries_are_current(name):
    assert (PACKAGE / name).exists(), f"tinyhydra/{name} is gone: remove it from OVER_BUDGET"
    assert line_count(name) > LINE_BUDGET, (
        f"tinyhydra/{name} is back within {LINE_BUDGET} lines: remove it from OVER_BUDGET")


def test_the_package_within_its_total_budget():
    total = sum(line_count(name) for name in package_modules())
    assert total <= TOTAL_BUDGET, (
        f"tinyhydra/ has {total} lines, over its budget of {TOTAL_BUDGET}: cut what is not needed, "
        f"or raise TOTAL_BUDGET in tests/test_layout.py and say why in the commit")


def test_the_library_holds_no_app_or_course_module():
    """The training app lives in examples/trainer, the course in course/: the library imports
    neither, and neither's modules are in it."""
    for name in package_modules():
        tree = ast.parse((PACKAGE / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("trainer", "course", "examples") for m in modules), name
    assert not {"config.py", "cli.py", "runs.py", "exercises.py", "checking.py"} & {
        Path(name).name for name in package_modules()}


def test_results_hold_no_code():
    """results/ holds measurements (data and text); the code that made them is in benchmarks/ or scripts/."""
    assert sorted((ROOT / "results").rglob("*.py")) == []


def imported_package_modules(name):
    """The tinyhydra modules that tinyhydra/<name> imports (``from .x import``, ``from . import x``)."""
    tree = ast.parse((PACKAGE / name).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_hydra_imports_no_baseline():
    """hydra.py reads on its own: the shared helpers, the prefix sums, the engine, nothing of
    the baselines."""
    assert imported_package_modules("attention/hydra.py") <= {"backend", "masking", "scan", "tensor"}


@pytest.mark.parametrize("name", ["attention/hydra.py", "attention/decayed_hydra.py",
                                  "attention/softmax_attention.py", "attention/linear_attention.py",
                                  "attention/reference.py"])
def test_attention_ops_share_the_masking_helpers(name):
    assert "masking" in imported_package_modules(name)


def test_shared_helpers_are_defined_once():
    """No copies: each shared helper has one definition in the package."""
    helpers = {"raw", "_raw", "check_qkv", "check_float", "as_bool_mask", "causal_mask",
               "prefix_sum", "reverse_prefix_sum", "zero_masked_keys", "sigmoid"}
    definitions = {}
    for name in package_modules():
        tree = ast.parse((PACKAGE / name).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in helpers:
                definitions.setdefault(node.name, []).append(name)
    # functional.sigmoid is the Tensor-level function F.sigmoid, ops.sigmoid the array formula
    definitions["sigmoid"] = [m for m in definitions.get("sigmoid", []) if m != "functional.py"]
    assert "_raw" not in definitions, definitions["_raw"]
    assert {helper: modules for helper, modules in definitions.items() if len(modules) > 1} == {}


def test_nn_reexports_the_module_machinery():
    assert (nn.Module, nn.Parameter, nn.ModuleList) == (module.Module, module.Parameter,
                                                        module.ModuleList)


def docstring_modules(package):
    """The modules (``.x``) a sub-package's docstring names, in order; a package as ``x/``."""
    names = []
    for name in re.findall(r":mod:`\.(\w+)`", importlib.import_module(f"tinyhydra.{package}").__doc__):
        entry = f"{package}/{name}/" if (PACKAGE / package / name).is_dir() else f"{package}/{name}.py"
        if entry not in names:
            names.append(entry)
    return names


def package_docstring_order():
    """The package's reading order: the top docstring's steps, each sub-package expanded by its
    own docstring."""
    text = " ".join(tinyhydra.__doc__.split())
    steps = text.split("Reading order:", 1)[1].split(".", 1)[0].split("->")
    order = []
    for step in (step.strip() for step in steps):
        order += docstring_modules(step) if step in SUB_PACKAGES else [f"{step}.py"]
    return order


def readme_reading_order_rows():
    """The cells (stripped) of every numbered row of the README's reading-order table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Reading order", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in row.split("|")] for row in table.splitlines()]
    return [cells for cells in rows if len(cells) > 3 and cells[1].isdigit()]


def readme_order():
    """The tinyhydra modules (a package such as ``rec/data/`` whole) of the README's
    reading-order table, in order."""
    return [name for cells in readme_reading_order_rows()
            for name in re.findall(r"`([\w/]+(?:\.py|/))`", cells[2]) if not name.startswith("examples/")]


def test_reading_order_is_the_same_in_readme_and_package_docstrings():
    assert readme_order() == package_docstring_order()


def test_readme_names_files_that_exist():
    for cells in readme_reading_order_rows():
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", cells[2]):
            assert (ROOT / name if name.startswith("examples/") else PACKAGE / name).exists(), name


def test_reading_order_names_every_module():
    listed = set(package_docstring_order())
    present = set()
    for name in package_modules():
        if Path(name).name == "__init__.py" and name != "__init__.py":
            continue  # a sub-package: its docstring is the reading order itself
        parts = name.split("/")
        present.add(f"{parts[0]}/{parts[1]}/" if len(parts) > 2 else name)  # rec/data/x.py is rec/data/
    missing = present - listed - set(NOT_IN_READING_ORDER)
    assert not missing, (f"add {sorted(missing)} to the reading order: its sub-package's __init__.py "
                         f"docstring and README.md")
    assert listed <= present, f"the reading order names modules that do not exist: {sorted(listed - present)}"
