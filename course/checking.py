"""The machinery of :func:`course.exercises.check`: run an answer on a case, compare it with
the expected arrays, gradcheck a backward, and phrase the first failure as one line."""
from __future__ import annotations

import numpy as np

from tinyhydra.gradcheck import gradcheck
from tinyhydra.tensor import Function, Tensor

ATOL, RTOL = 1e-10, 1e-7  # float64 throughout: a correct answer agrees to rounding error


class Failed(Exception):
    """The first failing case, already phrased for the one-line report."""


def call(label, fn, *args):
    """fn(*args) on copies of the array arguments (an in-place edit must not change the next
    case), with any exception turned into a failure of case ``label``."""
    args = [arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args]
    try:
        return fn(*args)
    except Exception as error:  # the student's code may raise anything
        raise Failed(f"case '{label}': {type(error).__name__}: {error}") from None


def _fmt(value) -> str:
    value = np.asarray(value).item()  # numpy scalars print as plain Python values
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def expect(label, expected, actual, what="out"):
    """Fail unless ``actual`` has ``expected``'s shape and values (to ATOL + RTOL |expected|)."""
    expected = np.asarray(expected)
    try:
        actual = np.asarray(actual, dtype=expected.dtype if expected.dtype == bool else np.float64)
    except (TypeError, ValueError):
        raise Failed(f"case '{label}': {what} should be an array, got {type(actual).__name__}") from None
    if actual.shape != expected.shape:
        raise Failed(f"case '{label}': {what} has shape {actual.shape}, expected {expected.shape}")
    if expected.dtype == bool:
        wrong = actual != expected
    else:
        wrong = ~np.isclose(actual, expected, atol=ATOL, rtol=RTOL)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        where = f"{what}[{', '.join(map(str, index))}]" if index else what
        raise Failed(f"case '{label}': {where} expected {_fmt(expected[index])}, "
                      f"got {_fmt(actual[index])}")


def function_from(forward, backward) -> type:
    """A Function class from raw-array ``forward(*arrays) -> (out, saved)`` and
    ``backward(saved, g) -> grads``, so that a student's backward can be gradchecked."""

    def fwd(ctx, *arrays):
        out, ctx.saved = forward(*arrays)
        return out

    def bwd(ctx, g):
        return backward(ctx.saved, g)

    return type("StudentFunction", (Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})


def gradcheck_case(label, function, arrays):
    """th.gradcheck of ``function.apply`` on float64 copies of ``arrays`` (a random cotangent)."""
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    try:
        gradcheck(function.apply, inputs)
    except AssertionError as error:
        raise Failed(f"case 'gradcheck, {label}': {str(error).splitlines()[-1].strip()}") from None
    except Exception as error:  # raised inside the student's backward
        raise Failed(f"case 'gradcheck, {label}': {type(error).__name__}: {error}") from None


def autograd_grads(fn, arrays, g):
    """Gradients of <g, fn(*tensors)> by the library's autograd, as arrays."""
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    fn(*inputs).backward(g)
    return [x.grad if x.grad is not None else np.zeros(x.shape) for x in inputs]


def as_grads(label, answer, count):
    """A backward's answer as a tuple of ``count`` gradients."""
    if count == 1:
        return (answer,)
    if not isinstance(answer, (tuple, list)) or len(answer) != count:
        raise Failed(f"case '{label}': expected a tuple of {count} gradients, got {type(answer).__name__}")
    return tuple(answer)
