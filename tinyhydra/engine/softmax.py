"""Softmax, log-softmax and the losses built on them, each fused with its backward.

All are shifted by the row maximum before exponentiating, so they are exact for
logits of any magnitude (|x| ~ 1e3 included) instead of overflowing. float16 inputs
are computed in float32 (a float16 sum of exponentials keeps ~3 digits) and the
results cast back to float16.
"""
from __future__ import annotations

from . import backend
from .ops import sigmoid
from .tensor import Function


def _shifted_exp(x, axis):
    """(e^(x - max), x - max) along ``axis``: the stable core of every op here."""
    xp = backend.get_array_module(x)
    if x.shape[axis] == 0:  # softmax over nothing: an empty result, as PyTorch's
        return xp.exp(x), x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    return xp.exp(shifted), shifted


class Softmax(Function):
    """y = e^x / sum(e^x) along ``axis``.

    Jacobian-vector product: dL/dx_j = sum_i g_i y_i (delta_ij - y_j)
                                    = y_j (g_j - sum_i g_i y_i).
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        ctx.dtype = x.dtype
        exps, _ = _shifted_exp(backend.at_least_float32(x), axis)
        exps /= exps.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(exps)
        return exps.astype(ctx.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        g = backend.at_least_float32(g)
        return (y * (g - (g * y).sum(axis=ctx.axis, keepdims=True))).astype(ctx.dtype, copy=False)


class LogSoftmax(Function):
    """y = x - log sum(e^x) along ``axis``.

    dy_i/dx_j = delta_ij - softmax(x)_j, so dL/dx = g - softmax(x) * sum(g).
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = backend.get_array_module(x)
        ctx.dtype = x.dtype
        exps, shifted = _shifted_exp(backend.at_least_float32(x), axis)
        shifted -= xp.log(exps.sum(axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(shifted)
        return shifted.astype(ctx.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (log_y,) = ctx.saved_tensors
        xp = backend.get_array_module(g)
        g = backend.at_least_float32(g)
        return (g - xp.exp(log_y) * g.sum(axis=ctx.axis, keepdims=True)).astype(ctx.dtype, copy=False)


def _check_targets(logits, targets, ignore_index):
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets of shape {targets.shape} do not match logits of shape "
            f"{logits.shape} (expected targets of shape {logits.shape[:-1]})"
        )
    if backend.is_gpu_array(targets):
        return  # a range check would synchronise the GPU on every step
    num_classes = logits.shape[-1]
    valid = targets[targets != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        raise IndexError(
            f"cross_entropy: target ids must lie in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}; got values from {valid.min()} to {valid.max()}"
        )


class CrossEntropy(Function):
    """Mean over non-ignored rows of -log softmax(logits)[target].

    Shapes: logits (N, C) (or (..., C)), targets (N,) ints; rows whose target equals
    ``ignore_index`` add nothing to the loss or its gradient: they are left out by
    selection (``where``), not multiplied by 0, so even a NaN there cannot leak
    (0 * NaN is NaN). With n kept rows:

        loss = 1/n sum_r (log sum_c e^{x_rc} - x_{r,t_r})
        dloss/dx_rc = (softmax(x_r)_c - [c == t_r]) / n   for kept rows, 0 otherwise.

    The probabilities are computed in place and reused as the gradient buffer, so
    the op costs one (N, C) array. If every row is ignored the loss is 0.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index=-100):
        xp = backend.get_array_module(logits)
        targets = backend.to_device(targets, backend.device_of(logits))
        _check_targets(logits, targets, ignore_index)
        ctx.input_shape, ctx.dtype = logits.shape, logits.dtype
        num_classes = logits.shape[-1]
        logits = backend.at_least_float32(logits).reshape(-1, num_classes)  # (..., C) -> (N, C)
        targets = targets.reshape(-1)  # (N,)
        kept = targets != ignore_index
        safe_targets = xp.where(kept, targets, 0)
        rows = xp.arange(targets.shape[0])

        row_max = logits.max(axis=1, keepdims=True)  # (N, 1)
        exps = logits - row_max  # (N, C), shifted logits for now
        target_shifted = exps[rows, safe_targets]  # (N,)
        xp.exp(exps, out=exps)  # in place: one (N, C) buffer for the whole op
        sum_exp = exps.sum(axis=1)  # (N,)
        count = xp.maximum(kept.sum(), 1).astype(logits.dtype)
        loss = kept_row_losses(kept, sum_exp, target_shifted).sum() / count

        # softmax = exps / sum_exp: the division is folded into the backward's row scaling
        ctx.save_for_backward(exps, sum_exp, safe_targets, kept, count)
        return loss.astype(ctx.dtype)

    @staticmethod
    def backward(ctx, g):
        if not ctx.saved_tensors:
            raise RuntimeError("CrossEntropy.backward can run only once per forward")
        exps, sum_exp, targets, kept, count = ctx.saved_tensors
        ctx.saved_tensors = ()  # the buffer is overwritten below
        xp = backend.get_array_module(exps)
        row_scale, row_factor = kept_row_scales(kept, g / count, sum_exp)  # (N,) 0 for ignored rows
        grad = exps  # (N, C), reused in place
        grad *= row_factor[:, None]  # = softmax * row_scale
        grad[xp.arange(targets.shape[0]), targets] -= row_scale
        grad[~kept] = 0  # selected away: an ignored row's NaN times 0 would still be NaN
        return grad.reshape(ctx.input_shape).astype(ctx.dtype, copy=False), None


# The per-row steps of CrossEntropy: one kernel each on a GPU (backend.elementwise). Its
# (N, C) passes stay in place as they are: a fused form would cost the CPU an (N, C) array.
@backend.elementwise
def kept_row_losses(xp, kept, sum_exp, target_shifted):
    """log sum_c e^(x_rc - max_r) - (x_{r,t_r} - max_r) on kept rows, 0 on ignored ones"""
    return xp.where(kept, xp.log(sum_exp) - target_shifted, 0)


@backend.elementwise
def kept_row_scales(xp, kept, scale, sum_exp):
    """(s_r, s_r / sum_c e^(x_rc - max_r)) with s_r = dL/dloss / n on kept rows, 0 on ignored ones"""
    row_scale = xp.where(kept, scale, 0).astype(sum_exp.dtype)
    return row_scale, row_scale / sum_exp


class BinaryCrossEntropyWithLogits(Function):
    """Mean of -(t log s(x) + (1 - t) log(1 - s(x))), s = sigmoid, written stably:

        loss_i = max(x_i, 0) - x_i t_i + log(1 + e^{-|x_i|})
        dloss/dx_i = (s(x_i) - t_i) / n
    """

    @staticmethod
    def forward(ctx, logits, targets):
        xp = backend.get_array_module(logits)
        targets = xp.asarray(targets, dtype=logits.dtype)
        if targets.shape != logits.shape:
            raise ValueError(
                f"binary_cross_entropy_with_logits: targets of shape {targets.shape} do not "
                f"match logits of shape {logits.shape}"
            )
        losses = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))
        ctx.save_for_backward(logits, targets)
        return losses.mean()

    @staticmethod
    def backward(ctx, g):
        logits, targets = ctx.saved_tensors
        return (sigmoid(logits) - targets) * (g / logits.size), None
