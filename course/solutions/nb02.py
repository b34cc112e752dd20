"""Answers to 02_softmax_attention.ipynb: the causal mask, masked attention and its backward."""
import numpy as np

__all__ = ["causal_mask", "softmax_attention", "softmax_attention_backward"]


def causal_mask(length):
    """(L, L) bool, M[i, j] = [j <= i]: query i may attend to keys 0..i."""
    return np.tril(np.ones((length, length), dtype=bool))


def _probabilities(q, k, mask):
    """P = softmax(q k^T / sqrt(d)) over allowed keys; a row with no allowed key is 0."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])  # (..., L, S)
    allowed = np.ones(scores.shape, dtype=bool) if mask is None else np.broadcast_to(mask, scores.shape)
    scores = np.where(allowed, scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True)
    exps = np.where(allowed, np.exp(scores - np.where(np.isfinite(row_max), row_max, 0.0)), 0.0)
    total = exps.sum(axis=-1, keepdims=True)
    return exps / np.where(total == 0, 1.0, total)


def softmax_attention(q, k, v, mask):
    return _probabilities(q, k, mask) @ v


def softmax_attention_backward(q, k, v, mask, g):
    """dV = P^T G, dP = G V^T, dS = P (dP - rowdot(G, O)), dQ = c dS K, dK = c dS^T Q."""
    p = _probabilities(q, k, mask)
    c = 1.0 / np.sqrt(q.shape[-1])
    d_v = np.swapaxes(p, -1, -2) @ g
    d_p = g @ np.swapaxes(v, -1, -2)
    d_s = p * (d_p - (g * (p @ v)).sum(axis=-1, keepdims=True))
    return c * d_s @ k, c * np.swapaxes(d_s, -1, -2) @ q, d_v
