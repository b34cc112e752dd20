"""Largest float64 difference between fused Hydra attention and its explicit quadratic form.

Draws 200 random cases (B <= 3, L and D <= 32, random key masks, a random cotangent),
runs both forms forward and backward, and prints the worst absolute difference of the
outputs and of the gradients of q, k and v, causal and bidirectional.

    python benchmarks/hydra_vs_quadratic.py
"""
import numpy as np

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra.reference import hydra_attention_reference

NUM_CASES = 200


def forward_backward(attention, qkv, causal, key_mask, cotangent):
    """Output and (q, k, v) gradients of ``attention`` for one case, as numpy arrays."""
    q, k, v = (th.Tensor(array.copy(), requires_grad=True) for array in qkv)
    out = attention(q, k, v, causal=causal, key_mask=key_mask)  # (B, L, D)
    out.backward(cotangent)
    return out.numpy(), [q.grad, k.grad, v.grad]


def main() -> dict:
    rng = np.random.default_rng(0)
    worst = {causal: {"forward": 0.0, "gradients": 0.0} for causal in (True, False)}
    for _ in range(NUM_CASES):
        batch, length, dim = rng.integers(1, 4), rng.integers(1, 33), rng.integers(1, 33)
        qkv = [rng.standard_normal((batch, length, dim)) for _ in range(3)]
        key_mask = rng.random((batch, length)) > 0.3  # (B, L) True = real token
        cotangent = rng.standard_normal((batch, length, dim))
        for causal in (True, False):
            fused_out, fused_grads = forward_backward(F.hydra_attention, qkv, causal, key_mask, cotangent)
            ref_out, ref_grads = forward_backward(hydra_attention_reference, qkv, causal, key_mask,
                                                  cotangent)
            errors = worst[causal]
            errors["forward"] = max(errors["forward"], np.abs(fused_out - ref_out).max())
            errors["gradients"] = max(errors["gradients"], *(np.abs(a - b).max()
                                                             for a, b in zip(fused_grads, ref_grads)))
    for causal, errors in worst.items():
        mode = "causal" if causal else "bidirectional"
        print(f"{mode:>13}: max |fused - quadratic| forward {errors['forward']:.2e}, "
              f"gradients {errors['gradients']:.2e}")
    return worst


if __name__ == "__main__":
    main()
