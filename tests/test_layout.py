"""The layout of the package: one concept per module, within a line budget, read in one order.

A module of ``tinyhydra/`` may have at most ``LINE_BUDGET`` lines. The few that need more
are listed in ``OVER_BUDGET`` with their own cap and the reason; an entry whose file is gone
or back under the budget must be removed, so the list stays honest.
"""
import ast
import re
from pathlib import Path

import pytest

import tinyhydra
from tinyhydra import module, nn

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyhydra"
LINE_BUDGET = 300

OVER_BUDGET = {
    "tensor.py": (525, "Tensor, Function, the backward loop and the versions of saved arrays: "
                       "the engine in one file, as micrograd's engine.py"),
    "ops.py": (450, "every primitive Function, one short class each, read as one table"),
    "models.py": (400, "the two encoders and the paper's four attention variants of them"),
}

# modules that the reading order leaves out, and why
NOT_IN_READING_ORDER = {
    "__init__.py": "the package itself",
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
    assert imported_package_modules("hydra.py") <= {"backend", "masking", "scan", "tensor"}


@pytest.mark.parametrize("name", ["hydra.py", "decayed_hydra.py", "softmax_attention.py",
                                  "linear_attention.py", "reference.py"])
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


def package_docstring_order():
    text = " ".join(tinyhydra.__doc__.split())
    order = text.split("Reading order", 1)[1].split(":", 1)[1].rsplit(".", 1)[0]
    return [name.strip() + ".py" for step in order.split("->") for name in step.split(",")]


def readme_reading_order_rows():
    """The cells (stripped) of every numbered row of the README's reading-order table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Reading order", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in row.split("|")] for row in table.splitlines()]
    return [cells for cells in rows if len(cells) > 3 and cells[1].isdigit()]


def readme_order():
    """The tinyhydra modules (a package such as ``data/`` as ``data.py``) of the README's
    reading-order table, in order."""
    return [name + ".py" for cells in readme_reading_order_rows()
            for name in re.findall(r"`(\w+)(?:\.py|/)`", cells[2])]  # data/ too


def readme_line_counts():
    """(file, lines the README states) for every file of the reading-order table; a package
    such as ``data/`` counts the lines of all its modules."""
    stated = []
    for cells in readme_reading_order_rows():
        names = re.findall(r"`([\w/]+(?:\.py|/))`", cells[2])
        counts = [int(n) for n in cells[-2].split(",")]
        assert len(names) == len(counts), f"README row {cells[1]}: {names} against {counts}"
        stated += zip(names, counts)
    return stated


def test_readme_line_counts_are_the_files_line_counts():
    """The reading-order table's "lines" column is the files' length today, not once."""
    stated = readme_line_counts()
    assert len(stated) > 20
    wrong = {}
    for name, count in stated:
        path = ROOT / name if name.startswith("examples/") else PACKAGE / name
        files = sorted(path.rglob("*.py")) if name.endswith("/") else [path]
        actual = sum(len(f.read_text().splitlines()) for f in files)
        if actual != count:
            wrong[name] = f"{actual} lines, the table says {count}"
    assert not wrong, f"update the lines column of README.md's reading order: {wrong}"


def test_reading_order_is_the_same_in_readme_and_package_docstring():
    assert readme_order() == package_docstring_order()


def top_level(name):
    """``data.py`` and ``data/readers.py`` are both the module (or package) ``data``."""
    return name.split("/")[0].removesuffix(".py")


def test_reading_order_names_every_module():
    listed = {top_level(name) for name in package_docstring_order()}
    present = {top_level(name) for name in package_modules()}
    missing = present - listed - {top_level(name) for name in NOT_IN_READING_ORDER}
    assert not missing, (f"add {sorted(missing)} to the reading order in README.md and in the "
                         f"tinyhydra/__init__.py docstring")
    assert listed <= present, f"the reading order names modules that do not exist: {sorted(listed - present)}"
