"""Tensor, Function and the reverse-mode graph.

A :class:`Tensor` wraps a backend array (``numpy.ndarray`` or ``cupy.ndarray``).
Every differentiable operation is a :class:`Function` subclass with two static
methods on *raw arrays* (the minitorch style)::

    forward(ctx, *arrays, **options)  -> output array
    backward(ctx, grad_output)        -> one gradient per positional input (or None)

``Function.apply`` unwraps Tensors, runs ``forward`` and, when gradients are wanted,
records a :class:`Node` (the function, its context and its parent tensors) on the
output. ``Tensor.backward`` walks the recorded graph in reverse topological order
(found iteratively, so a chain of thousands of ops cannot hit Python's recursion
limit), reduces broadcast gradients back to each parent's shape in ONE place
(:func:`unbroadcast`), accumulates into the leaves' ``.grad`` and frees the graph; a
second backward through a freed part raises, as PyTorch's does.

Saved arrays are versioned as in PyTorch: an in-place change of a tensor's array
(``x.data += 1``, an optimizer step; see :func:`bump_version`) after a Function saved it
(or a view of the same memory) makes that Function's backward raise instead of using
the changed values. One counter per memory owner (``array.base``), read only when some
change happened since the forward, so a step without in-place changes pays one int per op.

The engine has no profiling code: ``th.profile()`` wraps each Function's forward and
backward in a timer while it is active (see :mod:`tinyhydra.profiler`), so a run
without a profiler pays nothing for it.
"""
from __future__ import annotations

import contextlib
import operator

import numpy as np

from . import backend

_grad_enabled = True
_changes = 0  # in-place changes so far (bump_version)
_changed_at = {}  # id of a memory owner -> the value of _changes at its last in-place change


def _owner(array):
    """The array that owns ``array``'s memory (itself when it is not a view)."""
    while isinstance(getattr(array, "base", None), type(array)):
        array = array.base
    return array


def bump_version(array) -> None:
    """Record that ``array``'s memory was changed in place (see the module docstring)."""
    global _changes
    _changes += 1
    _changed_at[id(_owner(array))] = _changes


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, optimizer updates)."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


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
        self.changes = _changes  # in-place changes before the forward (see check_saved)

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


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs) -> Tensor:
        # one pass over the arguments: this runs for every operation of every step
        parents, raw_args, needs_input_grad = [], [], []
        for arg in args:
            if isinstance(arg, Tensor):
                parents.append(arg)
                raw_args.append(arg._data)
                needs_input_grad.append(arg.requires_grad)
            else:
                parents.append(None)
                raw_args.append(arg)
                needs_input_grad.append(False)
        record = _grad_enabled and True in needs_input_grad
        ctx = Context(needs_input_grad)
        output = cls.forward(ctx, *raw_args, **kwargs)
        if type(output) is not np.ndarray:
            output = _as_array(output)  # a NumPy scalar from a full reduction, or a CuPy array
        if not record:
            return Tensor._from_function(output, None)
        if output.dtype.kind != "f":
            raise TypeError(f"{cls.__name__} returned dtype {output.dtype}: only floating-point "
                            "outputs can carry gradients")
        return Tensor._from_function(output, Node(cls, ctx, parents))


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach it.

    If ``y = f(x)`` broadcast ``x`` of ``shape`` up to ``grad.shape``, then
    ``dL/dx`` sums ``dL/dy`` over the leading axes that were added and over the axes
    where ``x`` had size 1.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _as_array(value, like=None):
    """A backend array for ``value``; Python numbers take the dtype of ``like``."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        return value
    xp = np if like is None else backend.get_array_module(like)
    if like is not None and isinstance(value, (int, float, bool, np.number)):
        return xp.asarray(value, dtype=like.dtype)
    try:
        return xp.asarray(value)
    except ValueError:  # NumPy's "inhomogeneous shape"
        raise ValueError("Tensor: data is a ragged nested list (rows of different lengths); "
                         "give every row the same length") from None


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(data, requires_grad=False)``: ``data`` is a NumPy/CuPy array (kept as
    is, dtype included, no copy) or anything ``numpy.asarray`` accepts.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__
    # (optimizer's packing, data view, gradient view) while this is a packed parameter
    # (tinyhydra.flat): backward writes the first gradient into the view
    _packed = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        array = _as_array(data)
        if dtype is not None and array.dtype != dtype:
            array = array.astype(dtype)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {array.dtype}"
            )
        self._data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None
        self._is_leaf = True
        self.name = None

    @classmethod
    def _from_function(cls, output, node) -> Tensor:
        """A Function's output array as a Tensor, recorded (``node``) or not (None); no
        conversion or checks: ``apply`` made them."""
        result = cls.__new__(cls)
        result._data, result.grad, result.name = output, None, None
        result.requires_grad, result._node, result._is_leaf = node is not None, node, node is None
        return result

    # ------------------------------------------------------------------ basics
    @property
    def data(self):
        """The backend array. ``x.data = new`` replaces it (a Function that saved the old one
        keeps it); ``x.data += 1`` changes it in place, which the graph notices."""
        return self._data

    @data.setter
    def data(self, array):
        if array is self._data:  # x.data += 1, x.data -= lr * g: the same array, changed in place
            bump_version(array)
        self._data = array

    __hash__ = object.__hash__  # by identity, as PyTorch: == compares elementwise

    def __bool__(self):
        if self._data.size != 1:
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous: "
                             "reduce it first, e.g. (a == b).numpy().all()")
        return bool(self._data.reshape(()).item())

    def _compare(self, other, op):
        """A bool Tensor without grad: the elementwise comparison of the arrays."""
        return Tensor(op(self._data, other._data if isinstance(other, Tensor) else other))

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    @property
    def shape(self):
        return self._data.shape

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    @property
    def device(self) -> str:
        return backend.device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        return self._is_leaf

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.as_numpy(self._data)!r}, device='{self.device}'{grad})"

    def numpy(self) -> np.ndarray:
        """A host ``numpy.ndarray`` (copied from the GPU when needed)."""
        return backend.as_numpy(self._data)

    def item(self) -> float:
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self._data.reshape(()).item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self._data)

    def to(self, device: str) -> Tensor:
        """A leaf copy on ``device`` ('cpu' or 'gpu'); ``self`` if already there."""
        if backend.check_device(device) == self.device:
            return self
        moved = Tensor(backend.to_device(self._data, device), requires_grad=self.requires_grad)
        if self.grad is not None:
            moved.grad = backend.to_device(self.grad, device)
        return moved

    def astype(self, dtype) -> Tensor:
        return ops.Cast.apply(self, dtype=dtype)

    def zero_grad(self) -> None:
        self.grad = None

    # ---------------------------------------------------------------- backward
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), contracted with ``grad``, into each leaf's ``.grad``.

        ``grad`` defaults to 1 for a one-element tensor; any other tensor needs an
        explicit ``grad`` of its own shape (the cotangent). The graph is freed
        afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad())"
            )
        if not self._is_leaf and self._node is None:
            raise RuntimeError(
                "backward() through a graph that was already freed: recompute the forward "
                "pass, or call backward(retain_graph=True) the first time"
            )
        xp = backend.get_array_module(self._data)
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element tensor, got shape "
                    f"{self.shape}: reduce it first (e.g. .sum() or .mean()) or pass "
                    f"grad=<array of shape {self.shape}>"
                )
            grad = xp.ones_like(self._data)
        else:
            grad = _as_array(grad, like=self._data)
            if grad.dtype != self.dtype:  # a float64 cotangent must not turn a float32 graph float64
                grad = grad.astype(self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )

        grads = {id(self): grad}
        for tensor in self.topological_order():
            tensor_grad = grads.pop(id(tensor), None)
            if tensor_grad is None:
                continue
            node = tensor._node
            if node is None:
                if not tensor._is_leaf:
                    raise RuntimeError(
                        f"backward() through a graph that was already freed (a tensor of shape "
                        f"{tensor.shape} was used after an earlier backward): recompute the "
                        f"forward pass, or call backward(retain_graph=True) the first time")
                tensor._accumulate_grad(tensor_grad)
                continue
            if node.changes != _changes:  # some in-place change since this node's forward
                node.check_saved(tensor)
            parent_grads = node.function.backward(node.ctx, tensor_grad)
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            if len(parent_grads) != len(node.parents):
                raise RuntimeError(
                    f"{node.function.__name__}.backward returned {len(parent_grads)} gradients "
                    f"for {len(node.parents)} inputs"
                )
            for parent, parent_grad in zip(node.parents, parent_grads):
                if parent_grad is None or parent is None or not parent.requires_grad:
                    continue
                if parent_grad.shape != parent._data.shape:  # the common case costs no call
                    parent_grad = unbroadcast(parent_grad, parent._data.shape)
                previous = grads.get(id(parent))
                # out of place: a Function may hand the same array to several parents
                grads[id(parent)] = parent_grad if previous is None else previous + parent_grad
            if not retain_graph:
                tensor._node = None  # free the context and its saved arrays

    def _accumulate_grad(self, grad) -> None:
        """A leaf's ``.grad`` += ``grad``: in place after the first backward. The first one is
        written into the optimizer's flat gradient view when this is a packed parameter
        (tinyhydra.flat), else into a fresh copy (``grad`` may be shared with other tensors)."""
        if self.grad is not None:
            self.grad += grad
            return
        packed = self._packed
        if packed is not None and packed[1] is self._data:  # still packed: data not replaced
            packed[2][...] = grad
            self.grad = packed[2]
        else:
            self.grad = grad.astype(self.dtype, copy=True)

    def topological_order(self):
        """Tensors reachable from ``self``, each after every tensor that uses it.

        An iterative depth-first search: a tensor is emitted once all its parents
        have been emitted (post-order), and the list is reversed at the end.
        """
        post_order, visited = [], set()
        stack = [(self, False)]
        while stack:
            tensor, parents_done = stack.pop()
            if parents_done:
                post_order.append(tensor)
                continue
            if id(tensor) in visited:
                continue
            visited.add(id(tensor))
            stack.append((tensor, True))
            node = tensor._node
            if node is not None:
                for parent in node.parents:
                    if parent is not None and parent.requires_grad and id(parent) not in visited:
                        stack.append((parent, False))
        post_order.reverse()
        return post_order

    # ------------------------------------------------------------- operators
    def _lift(self, other) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(_as_array(other, like=self._data))

    def __add__(self, other):
        return ops.Add.apply(self, self._lift(other))

    def __radd__(self, other):
        return ops.Add.apply(self._lift(other), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, self._lift(other))

    def __rsub__(self, other):
        return ops.Sub.apply(self._lift(other), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, self._lift(other))

    def __rmul__(self, other):
        return ops.Mul.apply(self._lift(other), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, self._lift(other))

    def __rtruediv__(self, other):
        return ops.Div.apply(self._lift(other), self)

    def __matmul__(self, other):
        return ops.MatMul.apply(self, self._lift(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(self._lift(other), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        return ops.Pow.apply(self, exponent=float(exponent))

    def __neg__(self):
        return ops.Neg.apply(self)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=index)

    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sqrt(self):
        return ops.Pow.apply(self, exponent=0.5)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """PyTorch-style factory: ``th.tensor([[1., 2.]], requires_grad=True)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


from . import ops  # noqa: E402  (ops subclasses Function, defined above)


def raw(x):
    """The array inside a Tensor; anything else (an array, a list, None) unchanged."""
    return x._data if isinstance(x, Tensor) else x
