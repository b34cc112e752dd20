"""Embedding lookup: rows of a weight matrix picked by integer ids."""
from __future__ import annotations

from . import backend
from .tensor import Function


def check_ids(ids, num_embeddings: int, name: str = "embedding") -> None:
    """Raise a readable error for non-integer or out-of-range ids.

    Skipped for GPU arrays: checking would synchronise the device on every call,
    so ids are checked on the host before they are moved (``nn.Embedding`` does).
    """
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name}: ids must be an integer array, got dtype {ids.dtype}")
    if backend.is_gpu_array(ids) or ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= num_embeddings:
        raise IndexError(
            f"{name}: ids must lie in [0, {num_embeddings}), got values from {low} to {high}"
        )


class Embedding(Function):
    """y[..., :] = W[ids[...], :].

    Shapes: ids (...) ints, W (V, D) -> y (..., D). The gradient scatters back,
    repeated ids accumulating:  dL/dW[v] = sum over positions p with ids[p] == v of g[p].
    """

    @staticmethod
    def forward(ctx, weight, ids):
        ctx.ids = ids
        ctx.weight_shape = weight.shape
        return weight[ids]

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        grad = xp.zeros(ctx.weight_shape, dtype=g.dtype)  # (V, D)
        dim = ctx.weight_shape[1]
        backend.scatter_add(grad, ctx.ids.reshape(-1), g.reshape(-1, dim))  # (N,), (N, D)
        return grad
