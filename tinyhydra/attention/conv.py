r"""A short depthwise convolution along the sequence: each feature mixes its few neighbours.

Mamba, Mamba4Rec and RecBLR put a width-4 causal depthwise convolution in front of
their recurrence so that local patterns ("the last two items were ...") need not pass
through the long-range state. With taps at offsets s (s <= 0 only, when causal)::

    y[..., i, f] = sum_s w[s, f] x[..., i + s, f] + b[f]        (x = 0 outside 0..L-1)

Offsets: causal width W uses s = -(W-1) .. 0; otherwise s = -(W // 2) .. W - 1 - W // 2
(width 4: -2, -1, 0, 1). Cost O(L D W), one fused Function.
"""
from __future__ import annotations

from ..engine import backend
from ..engine.tensor import Function, Tensor
from .masking import check_flag

__all__ = ["depthwise_conv1d", "DepthwiseConv1dFunction", "conv_offsets"]


def conv_offsets(width: int, causal: bool) -> list[int]:
    """The offsets s of the taps, in the order of the rows of the weight (W, D)."""
    first = -(width - 1) if causal else -(width // 2)
    return list(range(first, first + width))


def _shift(x, s):
    """z[..., i, :] = x[..., i + s, :], zero where i + s falls outside the sequence."""
    xp = backend.get_array_module(x)
    length = x.shape[-2]
    z = xp.zeros_like(x)
    if abs(s) < length:
        if s >= 0:
            z[..., :length - s, :] = x[..., s:, :]
        else:
            z[..., -s:, :] = x[..., :length + s, :]
    return z


class DepthwiseConv1dFunction(Function):
    r"""y = sum_s w_s * shift(x, s) + b over (..., L, D) with weight (W, D), bias (D,).

    Backward, for G = dL/dy: shift(., s) is a linear map whose adjoint is shift(., -s), so::

        dx  = sum_s w_s * shift(G, -s)
        dw_s = sum over (..., L) of G * shift(x, s)
        db  = sum over (..., L) of G
    """

    @staticmethod
    def forward(ctx, x, weight, bias, offsets=()):
        ctx.offsets = offsets
        shifted = [_shift(x, s) for s in offsets]
        ctx.save_for_backward(weight, shifted)
        y = bias + weight[0] * shifted[0]
        for w, z in zip(weight[1:], shifted[1:]):
            y += w * z
        return y

    @staticmethod
    def backward(ctx, g):
        weight, shifted = ctx.saved_tensors
        xp = backend.get_array_module(g)
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        flat = g.reshape(-1, g.shape[-1])  # (N, D)
        if need_x:
            grad_x = sum(w * _shift(g, -s) for w, s in zip(weight, ctx.offsets))
        if need_w:
            grad_w = xp.stack([(flat * z.reshape(flat.shape)).sum(axis=0) for z in shifted])
        if need_b:
            grad_b = flat.sum(axis=0)
        return grad_x, grad_w, grad_b


def depthwise_conv1d(x: Tensor, weight: Tensor, bias: Tensor, *, causal: bool = True) -> Tensor:
    """x (..., L, D), weight (W, D), bias (D,) -> (..., L, D). See the module docstring."""
    check_flag("depthwise_conv1d", "causal", causal, hint="")
    if weight.ndim != 2 or weight.shape[1] != x.shape[-1] or bias.shape != x.shape[-1:]:
        raise ValueError(
            f"depthwise_conv1d: for x of shape {x.shape} the weight must be (width, "
            f"{x.shape[-1]}) and the bias ({x.shape[-1]},); got {weight.shape} and {bias.shape}")
    offsets = conv_offsets(weight.shape[0], causal)
    return DepthwiseConv1dFunction.apply(x, weight, bias, offsets=tuple(offsets))
