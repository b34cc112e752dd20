"""Answers to 06_decayed_hydra.ipynb: the decay's gradient and the bidirectional decayed context."""
import numpy as np

__all__ = ["decay_gradient", "bidirectional_context"]


def _prefix(x, a):
    """y_i = a * y_{i-1} + x_i along axis -2."""
    y, state = np.empty_like(x, dtype=np.float64), np.zeros(x.shape[:-2] + x.shape[-1:])
    for i in range(x.shape[-2]):
        state = a * state + x[..., i, :]
        y[..., i, :] = state
    return y


def decay_gradient(x, a, h):
    """dL/da = sum_t (P^T h)_t (P x)_{t-1}: the reversed sum of h against y one step back."""
    y = _prefix(x, a)
    back = _prefix(h[..., ::-1, :], a)[..., ::-1, :]  # P^T h, the reversed decayed sum
    return (back[..., 1:, :] * y[..., :-1, :]).reshape(-1, x.shape[-1]).sum(axis=0)


def bidirectional_context(u, a0, a1):
    """Earlier keys (t <= i) with a0, later ones (t > i) with a1: P_a0 u + P_a1^T u - u."""
    later = _prefix(u[..., ::-1, :], a1)[..., ::-1, :]
    return _prefix(u, a0) + later - u
