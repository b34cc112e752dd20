"""Layer normalisation over the last axis, fused with its backward."""
from __future__ import annotations

from . import backend
from .tensor import Function


class LayerNorm(Function):
    """y = xhat * w + b,  xhat = (x - mu) * r,  r = 1 / sqrt(var + eps), over the last axis (D).

    Shapes: x (..., D), w and b (D,). With gy = g * w (the gradient reaching xhat):

        dL/db = sum over rows of g
        dL/dw = sum over rows of g * xhat
        dL/dx = r * (gy - mean(gy) - xhat * mean(gy * xhat))      (means over D)

    The last line follows from d mu/dx_j = 1/D and d var/dx_j = 2 (x_j - mu) / D.
    ``weight`` and ``bias`` may be None (no affine part). A float16 ``x`` is normalised
    in float32 (its squares overflow float16 from about 256) and the results are cast
    back to the dtypes of x, w and b.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5):
        wide = backend.at_least_float32(x)
        ctx.narrow = None if wide is x else x.dtype  # float16: cast the results back
        ctx.dtypes = [x.dtype] + [ctx.narrow if p is None else p.dtype for p in (weight, bias)]
        x = wide
        mean = x.mean(axis=-1, keepdims=True)  # (..., 1)
        centred, squared = centre(x, mean)  # (..., D) each
        inv_std = inverse_std(squared.mean(axis=-1, keepdims=True), eps)  # (..., 1)
        xhat, y = normalise(centred, inv_std, 1.0 if weight is None else weight,
                            0.0 if bias is None else bias)
        ctx.save_for_backward(xhat, inv_std, weight)
        return y if ctx.narrow is None else y.astype(ctx.narrow)

    @staticmethod
    def backward(ctx, g):
        xhat, inv_std, weight = ctx.saved_tensors
        g = backend.at_least_float32(g)
        rows = tuple(range(g.ndim - 1))
        grad_weight = (g * xhat).sum(axis=rows) if ctx.needs_input_grad[1] else None
        grad_bias = g.sum(axis=rows) if ctx.needs_input_grad[2] else None
        grad_xhat = g * weight if weight is not None else g
        grad_x = None
        if ctx.needs_input_grad[0]:
            mean_g = grad_xhat.mean(axis=-1, keepdims=True)
            mean_gx = (grad_xhat * xhat).mean(axis=-1, keepdims=True)
            grad_x = input_grad(grad_xhat, mean_g, xhat, mean_gx, inv_std)
        if ctx.narrow is not None:  # computed in float32: back to the dtypes of x, w and b
            return tuple(None if grad is None else grad.astype(dtype)
                         for grad, dtype in zip((grad_x, grad_weight, grad_bias), ctx.dtypes))
        return grad_x, grad_weight, grad_bias


# The elementwise steps between the row reductions: each is one kernel on a GPU
# (backend.elementwise) and the same NumPy expressions on the CPU.
@backend.elementwise
def centre(xp, x, mean):
    """(x - mu, (x - mu)^2)"""
    centred = x - mean
    return centred, centred * centred


@backend.elementwise
def inverse_std(xp, variance, eps):
    """r = 1 / sqrt(var + eps)"""
    return 1.0 / xp.sqrt(variance + eps)


@backend.elementwise
def normalise(xp, centred, inv_std, weight, bias):
    """(xhat, y) = ((x - mu) r, xhat w + b)"""
    xhat = centred * inv_std
    return xhat, xhat * weight + bias


@backend.elementwise
def input_grad(xp, grad_xhat, mean_g, xhat, mean_gx, inv_std):
    """dL/dx = r (gy - mean(gy) - xhat mean(gy xhat))"""
    return (grad_xhat - mean_g - xhat * mean_gx) * inv_std
