"""Tensor and Function: the reverse-mode graph.

A :class:`Tensor` wraps a backend array (``numpy.ndarray`` or ``cupy.ndarray``).
Every differentiable operation is a :class:`Function` subclass with two static
methods on *raw arrays* (the minitorch style)::

    forward(ctx, *arrays, **options)  -> output array
    backward(ctx, grad_output)        -> one gradient per positional input (or None)

``Function.apply`` unwraps Tensors, runs ``forward`` and, when gradients are wanted,
records a :class:`~.graph.Node` (the function, its context and its parent tensors) on the
output. ``Tensor.backward`` walks the recorded graph in reverse topological order
(found iteratively, so a chain of thousands of ops cannot hit Python's recursion
limit), reduces broadcast gradients back to each parent's shape in ONE place
(:func:`unbroadcast`), accumulates into the leaves' ``.grad`` and frees the graph; a
second backward through a freed part raises, as PyTorch's does. Grad mode, the saved
arrays and their versions live in :mod:`.graph`.

Tensor's arithmetic (``x + y``, ``x @ y``, ``x.sum()``) is not in this file: the Functions
that compute it (:mod:`.ops`) subclass Function, and :mod:`.operators` attaches them to
Tensor, so the imports go one way: graph <- tensor <- ops <- operators (DeZero's
``setup_variable``, in a module of its own).

The engine has no profiling code: ``th.profile()`` wraps each Function's forward and
backward in a timer while it is active (see :mod:`tinyhydra.engine.profiler`), so a run
without a profiler pays nothing for it.
"""
from __future__ import annotations

import operator

import numpy as np

from . import backend, graph
from .graph import Context, Node, bump_version


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
        record = graph.grad_enabled and True in needs_input_grad
        ctx = Context(needs_input_grad)
        output = cls.forward(ctx, *raw_args, **kwargs)
        if type(output) is not np.ndarray:
            output = as_array(output)  # a NumPy scalar from a full reduction, or a CuPy array
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


def as_array(value, like=None):
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
    # (tinyhydra.nn.flat): backward writes the first gradient into the view
    _packed = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        array = as_array(data)
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
            grad = as_array(grad, like=self._data)
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
            if node.changes != graph.changes:  # some in-place change since this node's forward
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
        (tinyhydra.nn.flat), else into a fresh copy (``grad`` may be shared with other tensors)."""
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


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """PyTorch-style factory: ``th.tensor([[1., 2.]], requires_grad=True)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)



def raw(x):
    """The array inside a Tensor; anything else (an array, a list, None) unchanged."""
    return x._data if isinstance(x, Tensor) else x
