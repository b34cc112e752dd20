"""The checks of notebooks 01 to 03: three backwards, softmax attention and its backward, Hydra's
causal forward and backward, the decayed prefix sum. Registered in :mod:`course.exercises`."""
from __future__ import annotations

import numpy as np

from tinyhydra import functional as F
from tinyhydra.attention import reference
from tinyhydra.engine.tensor import Tensor

from .checking import (
    Failed,
    as_grads,
    autograd_grads,
    away_from_zero,
    call,
    case_rng,
    expect,
    function_from,
    gradcheck_case,
)


# ---------------------------------------------------------------- 01 autograd
def _elementwise_backward(fn, forward, library, shapes, extra_cases):
    """Shared by the backward exercises whose ``fn(saved..., g)`` returns dL/dx for one input x."""
    r = away_from_zero(case_rng(0))
    cases = [(f"x of shape {shape}", 2 * r(shape)) for shape in shapes] + extra_cases  # |x| in [1, 4]
    for label, x in cases:
        g = r(x.shape)
        _, saved = forward(x)
        expect(label, autograd_grads(library, [x], g)[0], call(label, fn, *saved, g), "dL/dx")
    function = function_from(forward, lambda saved, g: fn(*saved, g))
    for label, x in cases[:len(shapes)]:
        gradcheck_case(label, function, [x])
    return len(cases) + len(shapes)


def _tanh_forward(x):
    y = np.tanh(x)
    return y, (y,)


def _softmax_forward(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, (y,)


def _layer_norm_forward(x, eps=1e-5):
    centred = x - x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = centred * inv_std
    return xhat, (xhat, inv_std)


def _check_tanh_backward(fn):
    saturated = ("saturated |x| = 30", np.array([-30.0, -1.0, 0.0, 1.0, 30.0]))
    return _elementwise_backward(fn, _tanh_forward, lambda x: x.tanh(), [(5,), (3, 4), (2, 3, 4)], [saturated])


def _check_softmax_backward(fn):
    edges = [("a row of length 1", np.array([[0.3], [-2.0]])),
             ("a nearly one-hot row", np.array([[12.0, -3.0, 0.5, 1.0]]))]
    return _elementwise_backward(fn, _softmax_forward, F.softmax, [(4,), (3, 5), (2, 3, 6)], edges)


def _check_layer_norm_backward(fn):
    edges = [("D = 2", np.array([[1.0, -0.5], [0.2, 0.3]]))]
    return _elementwise_backward(fn, _layer_norm_forward, F.layer_norm, [(6,), (3, 6), (2, 3, 5)], edges)


# ------------------------------------------------------------ 02 softmax attention
def _tril(length):
    """(L, L) bool: [t <= i]."""
    return np.greater_equal.outer(np.arange(length), np.arange(length))


def _check_causal_mask(fn):
    lengths = (1, 2, 3, 6)
    for length in lengths:
        mask = call(f"L = {length}", fn, length)
        if np.asarray(mask).dtype != bool:
            raise Failed(f"case 'L = {length}': expected a bool array, got dtype {np.asarray(mask).dtype}")
        expect(f"L = {length}", _tril(length), mask, "mask")
    return len(lengths)


def _attention_cases():
    """(label, q, k, v, mask) for the softmax attention exercises: shapes, masks, edge cases."""
    rng = case_rng(1)
    r = away_from_zero(rng)
    padded = _tril(4)[None] & (np.arange(4) >= np.array([[0], [2]]))[:, None, :]  # (2, 4, 4)
    return [
        ("L = 3, d = 2, no mask", 2 * r((3, 2)), 2 * r((3, 2)), r((3, 2)), None),
        ("L = 1, causal", r((1, 4)), r((1, 4)), r((1, 3)), _tril(1)),
        ("batch of 2, L = 5, causal", r((2, 5, 3)), r((2, 5, 3)), r((2, 5, 3)), _tril(5)),
        ("left padding: fully masked rows output 0", r((2, 4, 3)), r((2, 4, 3)), r((2, 4, 2)), padded),
        ("(B, H, L, d) = (2, 2, 4, 3), causal", r((2, 2, 4, 3)), r((2, 2, 4, 3)), r((2, 2, 4, 3)), _tril(4)),
        ("3 queries, 5 keys, random mask", r((3, 2)), r((5, 2)), r((5, 3)), rng.random((3, 5)) > 0.4),
        ("large scores (shift by the row max)", 40 * r((3, 4)), 40 * r((3, 4)), r((3, 4)), _tril(3)),
    ]


def _reference_attention(mask):
    return lambda q, k, v: reference.softmax_attention_reference(q, k, v, mask=mask)


def _check_softmax_attention(fn):
    cases = _attention_cases()
    for label, q, k, v, mask in cases:
        expected = _reference_attention(mask)(q, k, v).data
        expect(label, expected, call(label, fn, q, k, v, mask))
    return len(cases)


def _check_softmax_attention_backward(fn):
    rng = case_rng(2)
    cases = _attention_cases()
    for label, q, k, v, mask in cases:
        g = away_from_zero(rng)(q.shape[:-1] + v.shape[-1:])
        expected = autograd_grads(_reference_attention(mask), [q, k, v], g)
        answer = as_grads(label, call(label, fn, q, k, v, mask, g), 3)
        for name, want, got in zip(("dq", "dk", "dv"), expected, answer):
            expect(label, want, got, name)
    checked = cases[1:5]  # gradcheck on small cases: it costs two forwards per input entry
    for label, q, k, v, mask in checked:
        function = function_from(lambda q, k, v, mask=mask: (_reference_attention(mask)(q, k, v).data, (q, k, v)),
                             lambda saved, g, mask=mask: tuple(fn(*saved, mask, g)))
        gradcheck_case(label, function, [q, k, v])
    return len(cases) + len(checked)


# ------------------------------------------------------------------ 03 hydra
def _hydra_cases():
    rng = case_rng(3)
    r = away_from_zero(rng)
    zero_query = r((2, 4, 3))
    zero_query[0, 1] = 0.0  # phi(0) = 0 / max(0, eps) = 0, not NaN
    return [
        ("L = 3, D = 2", r((3, 2)), r((3, 2)), r((3, 2))),
        ("L = 1", r((1, 4)), r((1, 4)), r((1, 4))),
        ("D = 1", r((5, 1)), r((5, 1)), r((5, 1))),
        ("batch of 2, L = 6, D = 4", r((2, 6, 4)), r((2, 6, 4)), r((2, 6, 4))),
        ("(B, H, L, D) = (2, 2, 5, 3)", r((2, 2, 5, 3)), r((2, 2, 5, 3)), r((2, 2, 5, 3))),
        ("a zero query row", zero_query, r((2, 4, 3)), r((2, 4, 3))),
    ]


def _check_hydra_causal_forward(fn):
    cases = _hydra_cases()
    for label, q, k, v in cases:
        expected = reference.hydra_attention_reference(q, k, v, causal=True).data
        expect(label, expected, call(label, fn, q, k, v))
    return len(cases)


def _prefix_product_quadratic(q_hat, k_hat, v):
    """out_i = sum_t [t <= i] q_hat_i * k_hat_t * v_t as Tensors, with the (..., L, L, D) products."""
    length = q_hat.shape[-2]
    weight = Tensor(_tril(length)[:, :, None].astype(np.float64))  # (L, L, 1): C[i, t]
    q_i = q_hat.reshape(*q_hat.shape[:-1], 1, q_hat.shape[-1])  # (..., L, 1, D)
    kv_t = (k_hat * v).reshape(*v.shape[:-2], 1, *v.shape[-2:])  # (..., 1, L, D)
    return (q_i * kv_t * weight).sum(axis=-2)  # (..., L, D)


def _check_hydra_causal_backward(fn):
    rng = case_rng(4)
    cases = [case for case in _hydra_cases() if case[0] != "a zero query row"]
    for label, q_hat, k_hat, v in cases:
        g = away_from_zero(rng)(v.shape)
        expected = autograd_grads(_prefix_product_quadratic, [q_hat, k_hat, v], g)
        answer = as_grads(label, call(label, fn, q_hat, k_hat, v, g), 3)
        for name, want, got in zip(("d_q_hat", "d_k_hat", "d_v"), expected, answer):
            expect(label, want, got, name)
    function = function_from(lambda q, k, v: (q * np.cumsum(k * v, axis=-2), (q, k, v)),
                         lambda saved, g: tuple(fn(*saved, g)))
    for label, q_hat, k_hat, v in cases[:4]:
        gradcheck_case(label, function, [q_hat, k_hat, v])
    return len(cases) + 4


def decayed_prefix_sum_loop(x, a):
    """y[..., i, :] = sum_{t <= i} a^(i - t) x[..., t, :], written as the double loop it reads as.

    x (..., L, D), a (D,) per-feature decays in [0, 1] (0^0 = 1, so a = 0 gives y = x and
    a = 1 the plain prefix sum). O(L^2 D): the slow, obviously right answer to compare with.
    """
    x, a = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    y = np.zeros_like(x)
    for i in range(x.shape[-2]):
        for t in range(i + 1):
            y[..., i, :] += a ** (i - t) * x[..., t, :]
    return y


def _check_decayed_prefix_sum(fn):
    rng = case_rng(5)
    r = away_from_zero(rng)
    cases = [
        ("a = 1 is the prefix sum", r((5, 3)), np.ones(3)),
        ("a = 0 leaves x unchanged", r((5, 3)), np.zeros(3)),
        ("a per feature: 0, 0.5, 0.9, 1", r((6, 4)), np.array([0.0, 0.5, 0.9, 1.0])),
        ("L = 1", r((1, 2)), np.array([0.3, 0.7])),
        ("batch of 2, L = 7, D = 3", r((2, 7, 3)), rng.uniform(0.2, 0.9, 3)),
        ("(B, H, L, D) = (2, 2, 4, 2)", r((2, 2, 4, 2)), rng.uniform(0.2, 0.9, 2)),
        ("L = 40, a = 0.95", r((40, 2)), np.full(2, 0.95)),
    ]
    for label, x, a in cases:
        expect(label, decayed_prefix_sum_loop(x, a), call(label, fn, x, a), "y")
    return len(cases)
