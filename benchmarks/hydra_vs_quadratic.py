"""Largest float64 difference between fused Hydra attention and its explicit quadratic form.

Draws 200 random cases (B <= 3, L and D <= 32, random key masks, a random cotangent),
runs both forms forward and backward, and prints the worst absolute difference of the
outputs and of the gradients of q, k and v (and of the decay, for decayed Hydra, whose
decays are drawn in [0, 1] with a quarter of them exactly 0 or 1), causal and
bidirectional.

    python benchmarks/hydra_vs_quadratic.py
"""
import numpy as np

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra.attention.reference import decayed_hydra_attention_reference, hydra_attention_reference

NUM_CASES = 200


# name -> (fused, quadratic reference, draws the extra inputs for (rng, dim, causal))
OPS = {
    "hydra": (F.hydra_attention, hydra_attention_reference, lambda rng, dim, causal: []),
    "decayed hydra": (F.decayed_hydra_attention, decayed_hydra_attention_reference,
                      lambda rng, dim, causal: [random_decays(rng, dim if causal else (2, dim))]),
}


def random_decays(rng, shape):
    """Uniform in [0, 1], a quarter of the entries set to exactly 0 or 1 (the edge cases)."""
    decay = rng.random(shape)
    edges = rng.random(shape) < 0.25
    return np.where(edges, rng.integers(0, 2, shape), decay).astype(np.float64)


def forward_backward(attention, inputs, causal, key_mask, cotangent):
    """Output and input gradients of ``attention`` for one case, as numpy arrays."""
    tensors = [th.Tensor(array.copy(), requires_grad=True) for array in inputs]
    out = attention(*tensors, causal=causal, key_mask=key_mask)  # (B, L, D)
    out.backward(cotangent)
    return out.numpy(), [t.grad for t in tensors]


def main() -> dict:
    rng = np.random.default_rng(0)
    worst = {(name, causal): {"forward": 0.0, "gradients": 0.0}
             for name in OPS for causal in (True, False)}
    for _ in range(NUM_CASES):
        batch, length, dim = rng.integers(1, 4), rng.integers(1, 33), rng.integers(1, 33)
        qkv = [rng.standard_normal((batch, length, dim)) for _ in range(3)]
        key_mask = rng.random((batch, length)) > 0.3  # (B, L) True = real token
        cotangent = rng.standard_normal((batch, length, dim))
        for (name, causal), errors in worst.items():
            fused, reference, extra = OPS[name]
            inputs = qkv + extra(rng, dim, causal)
            fused_out, fused_grads = forward_backward(fused, inputs, causal, key_mask, cotangent)
            ref_out, ref_grads = forward_backward(reference, inputs, causal, key_mask, cotangent)
            errors["forward"] = max(errors["forward"], np.abs(fused_out - ref_out).max())
            errors["gradients"] = max(errors["gradients"], *(np.abs(a - b).max()
                                                             for a, b in zip(fused_grads, ref_grads)))
    for (name, causal), errors in worst.items():
        mode = f"{name}, {'causal' if causal else 'bidirectional'}"
        print(f"{mode:>28}: max |fused - quadratic| forward {errors['forward']:.2e}, "
              f"gradients {errors['gradients']:.2e}")
    return worst


if __name__ == "__main__":
    main()
