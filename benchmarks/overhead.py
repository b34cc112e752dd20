"""What a training step costs beyond its arithmetic, for benchmarks/train_step.py.

* :func:`engine_overhead`: microseconds per operation that the autograd engine adds to
  NumPy (graph building, topological order, gradient bookkeeping), on arrays so small
  that the arithmetic is negligible;
* :func:`optimizer_update_seconds`: one Adam update over the flat parameter arrays
  against the same formula run parameter by parameter.
"""
from __future__ import annotations

import math
import time

import numpy as np

import tinyhydra as th
from tinyhydra.engine import backend
from tinyhydra.nn import optim  # adam_update too


def engine_overhead(ops: int, repeats: int = 50) -> dict:
    """Microseconds the engine adds to NumPy per operation, where arithmetic is negligible.

    A chain of ``ops / 2`` links ``y = y * c + w`` on 4-element float32 arrays (``c`` a
    constant, ``w`` a leaf that requires grad, so its gradient is accumulated at every
    link): the forward records the graph, the backward walks it. The same NumPy calls on
    raw arrays (forward ``a * c + w``; backward ``g * c`` and the running sum of ``w``'s
    gradient) are timed alike and subtracted, so what is left is graph building,
    topological order, gradient bookkeeping and Python. Best of ``repeats`` (short runs,
    many times: on a shared machine the best one is the one nobody interrupted).
    """
    links = max(ops // 2, 1)
    x = th.Tensor(np.ones(4, np.float32), requires_grad=True)
    w = th.Tensor(np.full(4, 1e-3, np.float32), requires_grad=True)
    c = th.Tensor(np.full(4, 0.999, np.float32))
    cotangent = np.ones(4, np.float32)

    def chain():
        y = x
        for _ in range(links):
            y = y * c + w
        return y

    def raw_forward():
        a = x.data
        for _ in range(links):
            a = a * c.data + w.data

    def raw_backward():
        g, w_grad = cotangent, None
        for _ in range(links):
            w_grad = g if w_grad is None else w_grad + g
            g = g * c.data

    best = {"forward": math.inf, "backward": math.inf, "topological_order": math.inf,
            "raw_forward": math.inf, "raw_backward": math.inf}
    for _ in range(repeats):
        x.grad = w.grad = None
        start = time.perf_counter()
        y = chain()
        best["forward"] = min(best["forward"], time.perf_counter() - start)
        start = time.perf_counter()
        y.topological_order()
        best["topological_order"] = min(best["topological_order"], time.perf_counter() - start)
        start = time.perf_counter()
        y.backward(cotangent)
        best["backward"] = min(best["backward"], time.perf_counter() - start)
        for name, fn in (("raw_forward", raw_forward), ("raw_backward", raw_backward)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    n = 2 * links
    result = {f"{name}_us_per_op": 1e6 * seconds / n for name, seconds in best.items()}
    result["engine_forward_us_per_op"] = 1e6 * (best["forward"] - best["raw_forward"]) / n
    result["engine_backward_us_per_op"] = 1e6 * (best["backward"] - best["raw_backward"]) / n
    result["ops"] = n
    return result


def optimizer_update_seconds(model, xp, repeats: int = 30) -> dict | None:
    """Seconds of one Adam update of ``model``'s parameters: ``Adam.step()`` (one update over
    the flat arrays) against ``optim.adam_update`` called once per parameter (the same
    formula on each parameter's own arrays), interleaved, best of ``repeats``. Gradients
    are random and already in place, so only the update is timed."""
    if not hasattr(optim, "adam_update"):  # an older tinyhydra without the flat update
        return None
    adam = optim.Adam(model.parameters(), lr=1e-6)
    params = model.parameters()
    rng = np.random.default_rng(0)
    for p in params:
        p.grad = xp.asarray(rng.standard_normal(p.shape).astype(p.dtype))
    moments = [(xp.zeros_like(p.data), xp.zeros_like(p.data)) for p in params]

    def per_parameter():
        for t, (p, (m, v)) in enumerate(zip(params, moments)):
            optim.adam_update(p.data, p.grad, m, v, t + 1, lr=1e-6, betas=adam.betas, eps=adam.eps)

    best = {"flat": math.inf, "per_parameter": math.inf}
    for _ in range(repeats):
        for name, fn in (("flat", adam.step), ("per_parameter", per_parameter)):
            backend.synchronize(xp)
            start = time.perf_counter()
            fn()
            backend.synchronize(xp)
            best[name] = min(best[name], time.perf_counter() - start)
    for p in params:
        p.grad = None
    return {**best, "parameters": len(params), "elements": sum(p.size for p in params)}
