"""Largest float64 difference between fused Hydra attention and its explicit quadratic form.

Draws 200 random cases (B <= 3, L and D <= 32, random key masks, a random cotangent),
runs both forms forward and backward, and prints the worst absolute difference of the
outputs and of the gradients of q, k and v, causal and bidirectional.

    python benchmarks/hydra_vs_quadratic.py
"""
import numpy as np, tinyhydra as th
from tinyhydra import functional as F
from tinyhydra.reference import hydra_attention_reference
rng = np.random.default_rng(0)
worst = {True: [0, 0], False: [0, 0]}
for trial in range(200):
    B, L, D = rng.integers(1, 4), rng.integers(1, 33), rng.integers(1, 33)
    arrays = [rng.standard_normal((B, L, D)) for _ in range(3)]
    mask = rng.random((B, L)) > 0.3
    G = rng.standard_normal((B, L, D))
    for causal in (True, False):
        outs, grads = [], []
        for fn in (F.hydra_attention, hydra_attention_reference):
            ts = [th.Tensor(a.copy(), requires_grad=True) for a in arrays]
            out = fn(*ts, causal=causal, key_mask=mask); out.backward(G)
            outs.append(out.numpy()); grads.append([t.grad for t in ts])
        worst[causal][0] = max(worst[causal][0], np.abs(outs[0] - outs[1]).max())
        worst[causal][1] = max(worst[causal][1], max(np.abs(a - b).max() for a, b in zip(*grads)))
for causal, (f, g) in worst.items():
    print(f"{'causal' if causal else 'bidirectional':>13}: max |fused - quadratic| forward {f:.2e}, gradients {g:.2e}")
