"""Softmax and linear attention (skeleton, being written)."""


def softmax_attention(q, k, v, mask=None):
    raise NotImplementedError


def linear_attention(q, k, v, num_heads, causal=False, key_mask=None):
    raise NotImplementedError
