"""The machinery of :func:`course.exercises.check`: run an answer on a case, compare it with
the expected arrays, gradcheck a backward, and phrase the first failure as one line."""
from __future__ import annotations

import inspect

import numpy as np

from tinyhydra.engine.gradcheck import gradcheck
from tinyhydra.engine.tensor import Function, Tensor

ATOL, RTOL = 1e-10, 1e-7  # float64 throughout: a correct answer agrees to rounding error


SMALL = 4  # inputs of at most 4 x 4 entries are printed in a failure message


class Failed(Exception):
    """The first failing case, already phrased for the one-line report. ``expected`` and ``got``
    are the values at the first differing entry (None when the answer raised or had the wrong shape)."""

    def __init__(self, message, expected=None, got=None):
        super().__init__(message)
        self.expected, self.got = expected, got


class Trace:
    """The last call of the answer under check: its case label, named arguments and result.
    A failure message shows them, and :mod:`course.mistakes` matches the result against the
    known mistakes of the exercise."""

    label, names, args, result = "", (), (), None

    @classmethod
    def describe(cls, label) -> str:
        """``'label' (q (3, 2), k (3, 2))``: the case and the shapes (or values) of its arguments."""
        if label != cls.label:
            return repr(label)
        parts = [f"{name} {_shape_or_value(arg)}" for name, arg in zip(cls.names, cls.args)]
        return f"{label!r} ({', '.join(parts)})" if parts else repr(label)

    @classmethod
    def small_inputs(cls, label) -> str:
        """``; inputs q = [[...]], ...`` when every array argument has at most 4 x 4 entries."""
        if label != cls.label:
            return ""
        arrays = [(name, arg) for name, arg in zip(cls.names, cls.args) if isinstance(arg, np.ndarray)]
        if not arrays or any(arg.ndim > 2 or max(arg.shape, default=1) > SMALL for _, arg in arrays):
            return ""
        shown = [f"{name} = {np.array2string(arg, precision=4, separator=', ')}" for name, arg in arrays]
        return "; inputs " + ", ".join(" ".join(text.split()) for text in shown)


class Seeds:
    """The seed offset of the cases' random data: 0 for the visible cases a student sees; the
    grader (course/grading.py) draws its hidden cases with another offset."""

    offset = 0


def case_rng(seed):
    """The random generator of one check's cases: seed ``seed`` plus :attr:`Seeds.offset`."""
    return np.random.default_rng(seed + Seeds.offset)


def away_from_zero(rng):
    """A sampler like ``rng.standard_normal`` whose entries have |x| in [0.5, 2]: no entry so close
    to 0 that a wrong answer differs from the right one only by a rounding-sized amount."""
    def sample(shape):
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    return sample


def _shape_or_value(arg) -> str:
    return str(arg.shape) if isinstance(arg, np.ndarray) else f"= {arg!r}"


def _argument_names(fn, count):
    """The answer's own parameter names (``q, k, v``), else ``arg0, arg1, ...``."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return tuple(names[:count]) if len(names) >= count else tuple(f"arg{i}" for i in range(count))


def call(label, fn, *args):
    """fn(*args) on copies of the array arguments (an in-place edit must not change the next
    case), with any exception turned into a failure of case ``label``; recorded in :class:`Trace`."""
    Trace.label, Trace.names, Trace.result = label, _argument_names(fn, len(args)), None
    Trace.args = tuple(arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args)
    args = [arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args]
    try:
        Trace.result = fn(*args)
    except Exception as error:  # the student's code may raise anything
        raise Failed(f"case {Trace.describe(label)}: {type(error).__name__}: {error}") from None
    return Trace.result


def _fmt(value) -> str:
    value = np.asarray(value).item()  # numpy scalars print as plain Python values
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def expect(label, expected, actual, what="out"):
    """Fail unless ``actual`` has ``expected``'s shape and values (to ATOL + RTOL |expected|);
    the message names the case, its shapes (its inputs when small) and the first differing entry."""
    expected = np.asarray(expected)
    case = Trace.describe(label)
    try:
        actual = np.asarray(actual, dtype=expected.dtype if expected.dtype == bool else np.float64)
    except (TypeError, ValueError):
        raise Failed(f"case {case}: {what} should be an array, got {type(actual).__name__}") from None
    if actual.shape != expected.shape:
        raise Failed(f"case {case}: {what} has shape {actual.shape}, expected {expected.shape}")
    if expected.dtype == bool:
        wrong = actual != expected
    else:
        wrong = ~np.isclose(actual, expected, atol=ATOL, rtol=RTOL)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        where = f"{what}[{', '.join(map(str, index))}]" if index else what
        raise Failed(f"case {case}: {where} expected {_fmt(expected[index])}, got {_fmt(actual[index])}"
                     f"{Trace.small_inputs(label)}", expected[index], actual[index])


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
        raise Failed(f"case {Trace.describe(label)}: expected a tuple of {count} gradients, "
                     f"got {type(answer).__name__}")
    return tuple(answer)
