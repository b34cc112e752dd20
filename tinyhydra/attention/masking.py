"""Masks and shapes shared by every attention op (Hydra, softmax, linear, the references).

Conventions:

* masks are bool, ``True`` = "may attend" / "real token"; a mask may be a NumPy or
  CuPy array or a bool :class:`~tinyhydra.engine.tensor.Tensor`, and is moved to the device
  of ``q`` if needed (:func:`as_bool_mask`);
* a masked key is removed by *selection* (:func:`zero_masked_keys`, ``xp.where``),
  never by multiplying with 0, so a NaN or inf stored at a padded position
  (0 * NaN = NaN) cannot reach an output or a gradient;
* a query with nothing to attend to outputs 0 and passes 0 gradient, never NaN;
* outputs and gradients keep the input dtype (float32 stays float32).
"""
from __future__ import annotations

import numpy as np

from ..engine import backend
from ..engine.tensor import raw

__all__ = [
    "check_float", "check_flag", "check_qkv", "as_bool_mask", "check_key_mask", "causal_mask",
    "zero_masked_keys", "rowdot", "swap_last", "check_num_heads", "split_heads", "merge_heads",
]


def check_float(name, array):
    """Raise TypeError unless ``array`` is a floating-point array."""
    if not hasattr(array, "dtype") or array.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point Tensor or array, got "
            f"{getattr(array, 'dtype', type(array).__name__)}"
        )


def check_flag(fn_name, name, value, hint="; a padding mask goes in key_mask="):
    """Raise TypeError unless ``value`` is a bool (a mask passed where ``causal`` goes is not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn_name}: {name} must be True or False, got "
                        f"{type(value).__name__}{hint}")


def check_qkv(fn_name, q, k, v, same_length=False, same_value_dim=False):
    """Validate attention inputs q (..., L, d), k (..., S, d), v (..., S, dv).

    Leading (batch/head) axes must be equal and L, S >= 1; ``same_length`` also asks
    L == S (causal attention, where query i and key i are the same position; a string
    names another reason); ``same_value_dim`` asks v's last axis to equal d (Hydra's
    elementwise products).
    """
    for name, array in (("q", q), ("k", k), ("v", v)):
        check_float(f"{fn_name}: {name}", array)
        if array.ndim < 2:
            raise ValueError(
                f"{fn_name}: {name} must have shape (..., length, features), got {array.shape}"
            )
    shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        raise ValueError(f"{fn_name}: q and k need at least one position (length >= 1 on the "
                         f"second-to-last axis); got {shapes}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"{fn_name}: q, k and v must share their leading axes; got {shapes}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{fn_name}: q and k must have the same feature dimension (last axis); got {shapes}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{fn_name}: k and v must have the same length (second-to-last axis); got {shapes}"
        )
    if same_length and q.shape[-2] != k.shape[-2]:
        why = same_length if isinstance(same_length, str) else "causal attention"
        raise ValueError(f"{fn_name}: {why} needs q and k of the same length; got {shapes}")
    if same_value_dim and v.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"{fn_name}: q, k and v must have the same feature dimension; got {shapes}"
        )


def as_bool_mask(mask, name, target_shape, like, fn_name):
    """``mask`` as a bool array on the device of ``like``, broadcastable to ``target_shape``.

    Accepts a NumPy/CuPy array, a bool Tensor, or nested lists. A mask on the other
    device than ``like`` is copied there once (``backend.to_device``). The mask is
    returned un-broadcast (it may be much smaller than ``target_shape``).
    """
    mask = raw(mask)
    if not hasattr(mask, "dtype"):
        try:
            mask = np.asarray(mask)
        except ValueError:  # rows of different lengths
            raise ValueError(f"{fn_name}: {name} is a ragged nested list; give every row the "
                             f"same length") from None
    device = backend.device_of(like)
    if backend.device_of(mask) != device:
        mask = backend.to_device(mask, device)
    if mask.dtype != np.bool_:
        raise ValueError(
            f"{fn_name}: {name} must be a bool array (True = attend / real token), got dtype "
            f"{mask.dtype} with shape {mask.shape}"
        )
    target_shape = tuple(target_shape)
    try:
        broadcast = np.broadcast_shapes(mask.shape, target_shape)
    except ValueError:
        broadcast = None
    if broadcast != target_shape:
        raise ValueError(
            f"{fn_name}: {name} of shape {mask.shape} does not broadcast to {target_shape}"
        )
    return mask


def check_key_mask(fn_name, key_mask, shape, like):
    """A layer's ``key_mask`` as a bool (B, L) array (or one that broadcasts to ``shape``)
    on the device of ``like``, checked as the user passed it, before any reshaping."""
    mask = as_bool_mask(key_mask, "key_mask", shape, like, fn_name)
    if mask.ndim != len(shape):
        raise ValueError(f"{fn_name}: key_mask must have shape {tuple(shape)} (B, L) like the "
                         f"input, got {tuple(mask.shape)}")
    return mask


def causal_mask(length, like=None):
    """Bool (L, L) lower-triangular mask: query i may attend to keys t <= i."""
    xp = np if like is None else backend.get_array_module(raw(like))
    return xp.tril(xp.ones((length, length), dtype=bool))


def zero_masked_keys(x, key_mask):
    """x (..., S, d) with the rows of masked keys (``key_mask`` (..., S) False) set to 0.

    A selection (``xp.where``), not a product: x * 0 is NaN where x is NaN or inf.
    ``key_mask`` None returns ``x`` itself.
    """
    if key_mask is None:
        return x
    xp = backend.get_array_module(x)
    return xp.where(key_mask[..., None], x, xp.zeros((), dtype=x.dtype))


def rowdot(a, b):
    """sum over the last axis of a * b, keeping it: (..., n) x (..., n) -> (..., 1)."""
    xp = backend.get_array_module(a)
    return xp.einsum("...i,...i->...", a, b)[..., None]


def _swapped_axes(ndim, a, b):
    """The axes 0..ndim-1 with ``a`` and ``b`` exchanged, for ``transpose`` (which an array
    and a Tensor both have, so every helper below serves the ops and the composed references)."""
    axes = list(range(ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return axes


def swap_last(x):
    """x^T over the last two axes (a view of an array; a Transpose of a Tensor)."""
    return x.transpose(*_swapped_axes(x.ndim, -1, -2))


def check_num_heads(fn_name, num_heads, *arrays):
    """Raise unless ``num_heads`` is an int >= 1 dividing the last axis of every array."""
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)):
        raise TypeError(f"{fn_name}: num_heads must be an int, got {num_heads!r}")
    if num_heads < 1:
        raise ValueError(f"{fn_name}: num_heads must be >= 1, got {num_heads}")
    for array in arrays:
        if array.shape[-1] % num_heads:
            raise ValueError(
                f"{fn_name}: num_heads={num_heads} does not divide the feature dimension "
                f"{array.shape[-1]} (shape {array.shape}); pick a divisor of it")


def split_heads(x, num_heads):
    """(..., L, H*dh) -> (..., H, L, dh): H contiguous heads of dh features (a view when
    possible); an array or a Tensor."""
    *lead, length, features = x.shape
    x = x.reshape(*lead, length, num_heads, features // num_heads)  # (..., L, H, dh)
    return x.transpose(*_swapped_axes(x.ndim, -3, -2))


def merge_heads(x):
    """(..., H, L, dh) -> (..., L, H*dh), the inverse of :func:`split_heads`."""
    *lead, heads, length, features = x.shape
    return x.transpose(*_swapped_axes(x.ndim, -3, -2)).reshape(*lead, length, heads * features)
