"""Answers to 03_hydra_attention.ipynb: Hydra's causal forward and backward, the decayed prefix sum."""
import numpy as np

__all__ = ["hydra_causal_forward", "hydra_causal_backward", "decayed_prefix_sum"]


def hydra_causal_forward(q, k, v):
    q_hat = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    k_hat = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
    return q_hat * np.cumsum(k_hat * v, axis=-2)


def hydra_causal_backward(q_hat, k_hat, v, g):
    """out = q_hat * kv, kv = cumsum(k_hat * v): the adjoint of the prefix sum is a reversed one."""
    kv = np.cumsum(k_hat * v, axis=-2)
    d_kv = np.flip(np.cumsum(np.flip(g * q_hat, axis=-2), axis=-2), axis=-2)  # sum over i >= t
    return g * kv, d_kv * v, d_kv * k_hat


def decayed_prefix_sum(x, a):
    """The recurrence y_i = a * y_{i-1} + x_i: O(L D), one step per position."""
    y = np.empty_like(x, dtype=np.float64)
    state = np.zeros(x.shape[:-2] + x.shape[-1:])
    for i in range(x.shape[-2]):
        state = a * state + x[..., i, :]
        y[..., i, :] = state
    return y
