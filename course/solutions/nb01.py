"""Answers to 01_autograd.ipynb: three backwards, each a one-line vector-Jacobian product."""

__all__ = ["tanh_backward", "softmax_backward", "layer_norm_backward"]


def tanh_backward(y, g):
    """y = tanh(x): dy/dx = 1 - tanh(x)^2 = 1 - y^2, elementwise."""
    return g * (1.0 - y * y)


def softmax_backward(y, g):
    """y = softmax(x) over the last axis: dx = y * (g - <g, y>)."""
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def layer_norm_backward(xhat, inv_std, g):
    """xhat = (x - mean) * inv_std over the last axis: dx = r (g - mean g - xhat mean(g xhat))."""
    return inv_std * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
