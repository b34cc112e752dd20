"""Answers to 06_decayed_hydra.ipynb: the decay's gradient, the bidirectional decayed context and
one chunk's decay matrix."""
import numpy as np

__all__ = ["decay_gradient", "bidirectional_context", "chunk_decay_matrix"]


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


def chunk_decay_matrix(a, chunk):
    """P[f, i, j] = a_f^(i-j) below the diagonal: the exponent is clipped at 0 first, so no
    negative power is ever taken (a^(i-j) for j > i overflows for small a), then masked."""
    lag = np.arange(chunk)[:, None] - np.arange(chunk)[None, :]  # (C, C) i - j
    powers = np.asarray(a, dtype=np.float64)[:, None, None] ** np.maximum(lag, 0)  # (D, C, C)
    return np.where(lag >= 0, powers, 0.0)
