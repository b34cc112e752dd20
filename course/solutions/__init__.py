"""The answer key of the notebooks' exercises: one module per notebook (nb01 ... nb06).

A notebook's exercise cell ends with ``fn = solutions.use(fn)``: with the environment
variable ``TINYHYDRA_SOLUTIONS=1`` that swaps the student's stub for the answer of the
same name (CI runs every notebook both ways: with the answers every check must pass,
with the untouched stubs every check must fail); otherwise it returns the stub unchanged.
"""
import importlib
import os

NOTEBOOK_MODULES = ("nb01", "nb02", "nb03", "nb04", "nb05", "nb06")


def answers(module: str) -> dict:
    """{exercise name: solution function} of one notebook's module, e.g. ``answers("nb03")``."""
    solved = importlib.import_module(f"{__name__}.{module}")
    return {name: getattr(solved, name) for name in solved.__all__}


def use(stub):
    """``stub``, or with TINYHYDRA_SOLUTIONS=1 the solution with the same name."""
    if os.environ.get("TINYHYDRA_SOLUTIONS", "0") != "1":
        return stub
    for module in NOTEBOOK_MODULES:
        solved = answers(module)
        if stub.__name__ in solved:
            return solved[stub.__name__]
    raise KeyError(f"no solution named {stub.__name__!r} in course/solutions; "
                   "name the stub as the exercise it answers")
