"""Hydra attention (skeleton, being written)."""


def hydra_attention(q, k, v, causal=False, key_mask=None):
    raise NotImplementedError
