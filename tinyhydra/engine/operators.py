"""Tensor's operators and array methods (``x + y``, ``x @ y``, ``x[i]``, ``x.sum()``), each one
call of a Function of :mod:`.ops`.

They are written as the body of a class, as they would be inside Tensor, and attached to
Tensor when this module is imported (the package imports it with the engine), so that
:mod:`.tensor` needs nothing of :mod:`.ops`, which subclasses its Function.
"""
from __future__ import annotations

from . import ops
from .tensor import Tensor, as_array


class TensorOperators:
    """The methods attached to :class:`~.tensor.Tensor` below; never instantiated."""

    def _lift(self, other) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(as_array(other, like=self._data))

    def astype(self, dtype) -> Tensor:
        return ops.Cast.apply(self, dtype=dtype)

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


for _name, _method in vars(TensorOperators).items():
    if callable(_method) or isinstance(_method, property):  # not __module__, __doc__, __dict__, ...
        setattr(Tensor, _name, _method)
