"""Numerical gradient checking with a random cotangent.

For y = fn(x_1, ..., x_n) and a random cotangent c of y's shape, the scalar
s = <c, y> has ds/dx = J^T c, exactly what ``y.backward(c)`` computes. Each entry
is compared with the central difference (s(x + h e_j) - s(x - h e_j)) / 2h in float64.

A random c matters: with c = 1 (a ``.sum()`` loss) a softmax or layernorm gradient
can be wrong and still pass, because their rows' gradients sum to zero whatever
the error in each entry.

The differences assume ``fn`` is a function: the same inputs give the same output. So
``fn`` is first evaluated twice at the given point; if the two outputs differ (dropout
in training mode, a random sampler), the check stops with that, not with a blame on
the gradient.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .graph import no_grad
from .tensor import Tensor


def _scalar_objective(fn, inputs, cotangent):
    """<cotangent, fn(*inputs)>, with no graph recorded."""
    with no_grad():
        output = fn(*inputs)
    return float((backend.as_numpy(output.data) * cotangent).sum())


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check the analytic gradients of ``fn(*inputs)`` against central differences.

    ``inputs``: Tensors (those with ``requires_grad=True`` are checked, and should be
    float64) or other values passed through unchanged. ``fn`` returns one Tensor.
    Returns True when every entry satisfies |analytic - numeric| <= atol + rtol |numeric|;
    otherwise raises AssertionError with a report (or returns False if
    ``raise_exception`` is False).
    """
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64, "
                "central differences in float32 are too coarse"
            )
    rng = np.random.default_rng(seed)
    with no_grad():
        first, second = (backend.as_numpy(fn(*inputs).data) for _ in range(2))
    if not np.array_equal(first, second, equal_nan=True):
        raise ValueError(
            "gradcheck: fn is not deterministic: two calls at the same inputs gave different "
            "outputs (dropout in training mode? call model.eval() or use p=0)")

    saved_grads = {i: inputs[i].grad for i in checked}
    for i in checked:
        inputs[i].grad = None
    output = fn(*inputs)
    cotangent = rng.standard_normal(output.shape)
    output.backward(backend.to_device(cotangent, output.device).astype(output.dtype))

    problems = []
    for i in checked:
        tensor = inputs[i]
        analytic = (np.zeros(tensor.shape) if tensor.grad is None
                    else backend.as_numpy(tensor.grad).astype(np.float64))
        host = backend.as_numpy(tensor.data).copy()
        numeric = np.zeros_like(host)
        for j in np.ndindex(host.shape):
            original = host[j]
            values = []
            for step in (eps, -eps):
                host[j] = original + step
                tensor.data = backend.to_device(host, tensor.device)
                values.append(_scalar_objective(fn, inputs, cotangent))
            host[j] = original
            numeric[j] = (values[0] - values[1]) / (2 * eps)
        tensor.data = backend.to_device(host, tensor.device)
        tensor.grad = saved_grads[i]  # leave the caller's gradients as they were
        error = np.abs(analytic - numeric)
        bad = error > atol + rtol * np.abs(numeric)
        if bad.any():
            worst = np.unravel_index(np.argmax(error - rtol * np.abs(numeric)), error.shape)
            problems.append(
                f"input {i} (shape {tensor.shape}): {int(bad.sum())} of {bad.size} entries differ; "
                f"worst at index {tuple(int(w) for w in worst)}: analytic {analytic[worst]:.10g}, "
                f"numeric {numeric[worst]:.10g}, |diff| {error[worst]:.3g}"
            )
    if problems:
        if raise_exception:
            raise AssertionError("gradcheck failed:\n  " + "\n  ".join(problems))
        return False
    return True
