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
        xp = backend.get_array_module(x)
        wide = backend.at_least_float32(x)
        ctx.narrow = None if wide is x else x.dtype  # float16: cast the results back
        ctx.dtypes = [x.dtype] + [ctx.narrow if p is None else p.dtype for p in (weight, bias)]
        x = wide
        mean = x.mean(axis=-1, keepdims=True)  # (..., 1)
        centred = x - mean  # (..., D)
        variance = (centred * centred).mean(axis=-1, keepdims=True)  # (..., 1)
        inv_std = 1.0 / xp.sqrt(variance + xp.asarray(eps, dtype=x.dtype))
        xhat = centred
        xhat *= inv_std  # in place: `centred` is not needed any more
        ctx.save_for_backward(xhat, inv_std, weight)
        y = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            y += bias
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
            grad_x = (grad_xhat - mean_g - xhat * mean_gx) * inv_std
        if ctx.narrow is not None:  # computed in float32: back to the dtypes of x, w and b
            return tuple(None if grad is None else grad.astype(dtype)
                         for grad, dtype in zip((grad_x, grad_weight, grad_bias), ctx.dtypes))
        return grad_x, grad_weight, grad_bias
