"""What a training step costs beyond its arithmetic, for benchmarks/train_step.py.

* :func:`engine_overhead`: microseconds per operation that the autograd engine adds to
  NumPy (graph building, topological order, gradient bookkeeping), on arrays so small
  that the arithmetic is negligible;
* :func:`attention_call_overhead`: microseconds of one forward + backward of each fused
  attention op at a tiny shape, where the arithmetic is negligible: the fixed cost of a call
  (argument checks, the Function machinery, the Python steps of the prefix sums), which is
  what a short sequence pays;
* :func:`optimizer_update_seconds`: one Adam update over the flat parameter arrays
  against the same formula run parameter by parameter.
"""
from __future__ import annotations

import math
import time

import common  # benchmarks/common.py: this script's folder is on sys.path
import numpy as np

import tinyhydra as th
from tinyhydra import functional as F
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


def attention_call_overhead(batch: int = 1, length: int = 8, dim: int = 8, repeats: int = 200) -> dict:
    """Microseconds of one forward + backward of each fused attention op on float32 (B, L, D)
    = (``batch``, ``length``, ``dim``) inputs, causal and bidirectional, best of ``repeats``
    (the one nobody interrupted). At the default (1, 8, 8) the arithmetic is a few hundred
    multiplications, so what is measured is the fixed cost of a call."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((batch, length, dim)).astype(np.float32) for _ in range(3)]
    cotangent = rng.standard_normal((batch, length, dim)).astype(np.float32)
    decay = np.full(dim, 0.9, np.float32)
    causal_mask = np.tril(np.ones((length, length), dtype=bool))  # (L, L)
    ops = {"softmax": lambda q, k, v, causal: F.softmax_attention(q, k, v, mask=causal_mask if causal else None),
           "linear": lambda q, k, v, causal: F.linear_attention(q, k, v, 1, causal=causal),
           "hydra": lambda q, k, v, causal: F.hydra_attention(q, k, v, causal=causal),
           "decayed hydra": lambda q, k, v, causal: F.decayed_hydra_attention(
               q, k, v, th.Tensor(decay if causal else np.stack([decay, decay]), requires_grad=True),
               causal=causal)}
    result = {"shape": [batch, length, dim]}
    for name, op in ops.items():
        for causal in (True, False):
            def call(op=op, causal=causal):
                q, k, v = (th.Tensor(a, requires_grad=True) for a in arrays)
                op(q, k, v, causal).backward(cotangent)
            best = min(common.time_runs(call, repeats, warmup=5))
            result[f"{name}, {'causal' if causal else 'bidirectional'}"] = 1e6 * best
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
