"""Embedding lookup: rows of a weight matrix picked by integer ids."""
from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Function, Tensor


def as_ids(ids, name: str = "embedding", what: str = "ids"):
    """``ids`` (an array, a Tensor or nested lists) as an array; a ragged nested list is a
    ValueError naming ``what`` instead of NumPy's "inhomogeneous shape"."""
    if isinstance(ids, Tensor):
        return ids.data
    if hasattr(ids, "dtype") and hasattr(ids, "shape"):
        return ids
    try:
        return np.asarray(ids)
    except ValueError:
        raise ValueError(f"{name}: {what} is a ragged nested list (rows of different lengths); "
                         f"left-pad every row with 0 to the same length") from None


def check_ids(ids, num_embeddings: int, name: str = "embedding", what: str = "ids") -> None:
    """Raise a readable error for non-integer or out-of-range ids; ``what`` names them as
    the caller knows them (ids, inputs, targets).

    Skipped for GPU arrays: checking would synchronise the device on every call,
    so ids are checked on the host before they are moved (``nn.Embedding`` does).
    """
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name}: {what} must be an integer array, got dtype {ids.dtype}")
    if backend.is_gpu_array(ids) or ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= num_embeddings:
        raise IndexError(
            f"{name}: {what} must lie in [0, {num_embeddings}), got values from {low} to {high}"
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
