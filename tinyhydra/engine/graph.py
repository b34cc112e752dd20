"""The bookkeeping around the graph: whether it is recorded, what a Function saved, and
whether a saved array was changed in place since.

* grad mode: :func:`no_grad` turns recording off for a block (inference, optimizer updates);
* :class:`Context`: the scratch space a Function's forward leaves for its backward;
* :class:`Node`: one recorded application of a Function (what backward needs to go on);
* versions, as in PyTorch: an in-place change of an array (``x.data += 1``, an optimizer step;
  see :func:`bump_version`) after a Function saved it (or a view of the same memory) makes that
  Function's backward raise instead of using the changed values. One counter per memory owner
  (``array.base``), read only when some change happened since the forward, so a step without
  in-place changes pays one int per op.
"""
from __future__ import annotations

import contextlib

grad_enabled = True
changes = 0  # in-place changes so far (bump_version)
_changed_at = {}  # id of a memory owner -> the value of changes at its last in-place change


def _owner(array):
    """The array that owns ``array``'s memory (itself when it is not a view)."""
    while isinstance(getattr(array, "base", None), type(array)):
        array = array.base
    return array


def bump_version(array) -> None:
    """Record that ``array``'s memory was changed in place (see the module docstring)."""
    global changes
    changes += 1
    _changed_at[id(_owner(array))] = changes


def is_grad_enabled() -> bool:
    return grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, optimizer updates)."""
    global grad_enabled
    previous = grad_enabled
    grad_enabled = False
    try:
        yield
    finally:
        grad_enabled = previous


class Context:
    """Scratch space a Function's forward leaves for its backward."""

    __slots__ = ("saved_tensors", "needs_input_grad", "__dict__")

    def __init__(self, needs_input_grad=()):
        self.saved_tensors = ()
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays


class Node:
    """One recorded application of a Function: what backward needs to go on."""

    __slots__ = ("function", "ctx", "parents", "changes")

    def __init__(self, function, ctx, parents):
        self.function = function
        self.ctx = ctx
        self.parents = parents  # one entry per positional input: a Tensor or None
        self.changes = changes  # in-place changes before the forward (see check_saved)

    def check_saved(self, output) -> None:
        """Raise if an array saved for backward was changed in place after the forward."""
        for array in self.ctx.saved_tensors:
            if _changed_at.get(id(_owner(array)), 0) <= self.changes:
                continue
            owner = _owner(array)
            names = [f"input {i} (shape {p.shape}{', ' + p.name if p.name else ''})"
                     for i, p in enumerate(self.parents)
                     if p is not None and _owner(p._data) is owner]
            if _owner(output._data) is owner:
                names.append(f"its output (shape {output.shape})")
            raise RuntimeError(
                f"backward(): the array of {' and '.join(names) or 'a tensor'} that "
                f"{self.function.__name__} saved for backward was changed in place since "
                f"(x.data += ..., an optimizer step): call backward first, or change a copy "
                f"(x.data = x.data + 1)")
