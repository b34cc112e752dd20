"""Hydra attention's outputs and gradients as the code before multi-head Hydra computed them.

``tests/data/hydra_attention_main.npz`` holds, for the fixed inputs of :func:`cases`, the
output and the three gradients of ``F.hydra_attention`` computed by tinyhydra at commit
80173b5, the last one without ``num_heads``, with::

    PYTHONPATH=<a checkout of 80173b5> python tests/hydra_main_values.py tests/data/hydra_attention_main.npz

``tests/test_multihead_hydra.py`` checks that ``num_heads=None`` still gives them bit for bit.
"""
import sys

import numpy as np

import tinyhydra as th
from tinyhydra import functional as F

PARTS = ("out", "dq", "dk", "dv")


def cases():
    """(name, q, k, v, cotangent, key_mask, causal): float64 and float32, both directions,
    L = 37 > 32 so that the causal prefix sum runs in two levels."""
    rng = np.random.default_rng(2027)
    for dtype in (np.float64, np.float32):
        for causal in (False, True):
            q, k, v, g = (rng.standard_normal((1, 37, 6)).astype(dtype) for _ in range(4))
            mask = rng.random((1, 37)) > 0.25
            yield (f"{np.dtype(dtype).name}_{'causal' if causal else 'bidirectional'}",
                   q, k, v, g, mask, causal)


def hydra_values(q, k, v, g, mask, causal, **options):
    """[out, dq, dk, dv] of F.hydra_attention under the cotangent g."""
    tensors = [th.Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.hydra_attention(*tensors, causal=causal, key_mask=mask, **options)
    out.backward(g)
    return [out.data] + [t.grad for t in tensors]


if __name__ == "__main__":
    stored = {}
    for name, *case in cases():
        for part, array in zip(PARTS, hydra_values(*case)):
            stored[f"{name}_{part}"] = array
    np.savez_compressed(sys.argv[1], **stored)
