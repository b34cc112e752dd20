"""Primitive operations, each a Function with a hand-written backward.

Notation: ``g`` is the incoming gradient dL/dy (same shape as the output ``y``).
Broadcasting is NOT undone here: ``Tensor.backward`` reduces every gradient to its
input's shape in one place (``tensor.unbroadcast``).
"""
from __future__ import annotations

import math

from . import backend
from .tensor import Function, Tensor


class Add(Function):
    """y = a + b;  dL/da = g,  dL/db = g."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """y = a - b;  dL/da = g,  dL/db = -g."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, -g


class Mul(Function):
    """y = a * b;  dL/da = g * b,  dL/db = g * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = g * b if ctx.needs_input_grad[0] else None
        grad_b = g * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b;  dL/da = g / b,  dL/db = -g * a / b^2 = -g * y / b."""

    @staticmethod
    def forward(ctx, a, b):
        y = a / b
        ctx.save_for_backward(b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        b, y = ctx.saved_tensors
        grad_a = g / b if ctx.needs_input_grad[0] else None
        grad_b = -g * y / b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    """y = -x;  dL/dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """y = x^p for a constant p;  dL/dx = g * p * x^(p-1)."""

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x**exponent

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        p = ctx.exponent
        return g * (p * x ** (p - 1))


class Exp(Function):
    """y = e^x;  dL/dx = g * y."""

    @staticmethod
    def forward(ctx, x):
        y = backend.get_array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(Function):
    """y = ln x;  dL/dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Tanh(Function):
    """y = tanh x;  dL/dx = g * (1 - y^2)."""

    @staticmethod
    def forward(ctx, x):
        y = backend.get_array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


def sigmoid(x):
    """1 / (1 + e^-x) on a raw array, computed as (1 + tanh(x/2)) / 2 (no overflow)."""
    return 0.5 * (1 + backend.get_array_module(x).tanh(0.5 * x))


class Sigmoid(Function):
    """y = sigmoid(x) (:func:`sigmoid`);  dL/dx = g * y (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        y = sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Relu(Function):
    """y = max(x, 0);  dL/dx = g * [x > 0]."""

    @staticmethod
    def forward(ctx, x):
        positive = x > 0
        ctx.save_for_backward(positive)
        return x * positive

    @staticmethod
    def backward(ctx, g):
        (positive,) = ctx.saved_tensors
        return g * positive


class ClampMin(Function):
    """y = max(x, lo) for a constant lo;  dL/dx = g * [x > lo]."""

    @staticmethod
    def forward(ctx, x, lo):
        above = x > lo
        ctx.save_for_backward(above)
        return backend.get_array_module(x).maximum(x, lo)

    @staticmethod
    def backward(ctx, g):
        (above,) = ctx.saved_tensors
        return g * above


GELU_C = math.sqrt(2.0 / math.pi)


class Gelu(Function):
    """GELU, tanh approximation (as in BERT):

        y = x/2 * (1 + t),  t = tanh(u),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
        dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * c * (1 + 3 * 0.044715 x^2)

    Each line is one ``backend.elementwise`` formula: one kernel on a GPU.
    """

    @staticmethod
    def forward(ctx, x):
        y, t = gelu_and_tanh(x)
        ctx.save_for_backward(x, t)
        return y

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        return gelu_grad(g, x, t)


@backend.elementwise
def gelu_and_tanh(xp, x):
    t = xp.tanh(GELU_C * (x + 0.044715 * (x * x * x)))  # NumPy's float32 x**3 is 100x slower
    return 0.5 * x * (1 + t), t


@backend.elementwise
def gelu_grad(xp, g, x, t):
    du_dx = GELU_C * (1 + 3 * 0.044715 * x * x)
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx)


class MaskedFill(Function):
    """y = where(mask, value, x) for a constant bool mask;  dL/dx = g * (not mask)."""

    @staticmethod
    def forward(ctx, x, mask, value):
        xp = backend.get_array_module(x)
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return backend.get_array_module(g).where(mask, 0, g).astype(g.dtype, copy=False)


class Cast(Function):
    """y = x as another dtype;  dL/dx = g cast back to x's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.input_dtype)


def _check_matmul_shapes(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(
            f"matmul needs tensors with at least 2 dimensions, got shapes {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul shape mismatch: {a.shape} @ {b.shape}: the last dimension of the left "
            f"operand ({a.shape[-1]}) must equal the second-to-last of the right ({b.shape[-2]})"
        )


def _matmul_2d_right(a, b):
    """(..., n, k) @ (k, m) as ONE 2-D GEMM (N, k) @ (k, m): faster than NumPy's batched loop."""
    return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[-1],))


class MatMul(Function):
    """Y = A @ B (batched over leading axes);  dL/dA = G @ B^T,  dL/dB = A^T @ G.

    Shapes: A (..., n, k), B (..., k, m), G (..., n, m). Leading batch axes that were
    broadcast are summed away by ``unbroadcast``. When B is a 2-D weight (the common
    case: x @ W), the batch axes are flattened into rows so each product is one GEMM,
    and dL/dB = A^T G sums over all rows at once.
    """

    @staticmethod
    def forward(ctx, a, b):
        _check_matmul_shapes(a, b)
        ctx.save_for_backward(a, b)
        if b.ndim == 2 and a.ndim > 2:
            return _matmul_2d_right(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        weight_like = b.ndim == 2 and a.ndim > 2
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = _matmul_2d_right(g, b.T) if weight_like else g @ b.swapaxes(-1, -2)
        if ctx.needs_input_grad[1]:
            if weight_like:  # (k, N) @ (N, m)
                grad_b = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            else:
                grad_b = a.swapaxes(-1, -2) @ g
        return grad_a, grad_b


def _normalise_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


class Sum(Function):
    """y = sum of x over ``axis``;  dL/dx = g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.input_shape = x.shape
        ctx.axes = _normalise_axes(axis, x.ndim)
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        kept_shape = tuple(1 if i in ctx.axes else n for i, n in enumerate(ctx.input_shape))
        return xp.broadcast_to(g.reshape(kept_shape), ctx.input_shape)


class Mean(Function):
    """y = mean of x over ``axis`` (n elements each);  dL/dx = g / n broadcast back."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.input_shape = x.shape
        ctx.axes = _normalise_axes(axis, x.ndim)
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        count = math.prod(ctx.input_shape[a] for a in ctx.axes)
        return Sum.backward(ctx, g / count)


class Reshape(Function):
    """y = x viewed with a new shape;  dL/dx = g reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.input_shape)


class Transpose(Function):
    """y = x with axes permuted;  dL/dx = g with the inverse permutation."""

    @staticmethod
    def forward(ctx, x, axes=None):
        axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return g.transpose(inverse)


def _raw_index(index):
    """Unwrap Tensors used as indices (``x[idx_tensor]``) into their arrays."""
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_basic_index(index) -> bool:
    """True for ints, slices, None and Ellipsis only: such an index never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


class GetItem(Function):
    """y = x[index] (ints, slices, int arrays);  dL/dx = zeros with g added at ``index``.

    Integer-array indices may repeat an element, so their scatter accumulates
    (``backend.scatter_add`` for one 1-D id array, ``backend.index_add`` otherwise);
    basic indices are a plain assignment.
    """

    @staticmethod
    def forward(ctx, x, index):
        index = _raw_index(index)
        ctx.index = index
        ctx.input_shape = x.shape
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        grad = xp.zeros(ctx.input_shape, dtype=g.dtype)
        index = ctx.index
        if _is_basic_index(index):
            grad[index] = g
        elif hasattr(index, "ndim") and index.ndim == 1 and index.dtype.kind in "iu":
            backend.scatter_add(grad, index, g)  # rows of axis 0: the sorted, fast scatter
        else:
            backend.index_add(grad, index, g)
        return grad


class Dropout(Function):
    """Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p);  dL/dx = g * m / (1 - p).

    Mask and scale are one ``backend.elementwise`` formula after drawing the uniforms.
    """

    @staticmethod
    def forward(ctx, x, p):
        xp = backend.get_array_module(x)
        uniform = backend.default_rng(xp).random(x.shape, dtype=x.dtype)
        y, mask = drop(x, uniform, p, 1.0 / (1.0 - p))  # mask: 0 or 1/(1-p)
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


@backend.elementwise
def drop(xp, x, uniform, p, scale):
    mask = (uniform >= p).astype(x.dtype) * scale  # in x's dtype: a Python float never promotes
    return x * mask, mask
