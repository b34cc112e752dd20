"""The encoder block that SASRec and BERT4Rec share: attention and a feed-forward network,
each in a residual branch with layer norm."""
from __future__ import annotations

from ..engine import backend
from ..engine.tensor import Tensor, raw
from .attention_layers import make_attention
from .layers import Dropout, FeedForward, LayerNorm
from .module import Module


class TransformerBlock(Module):
    """One encoder layer, shared by SASRec and BERT4Rec.

    Pre-LN (``norm_first=True``, as SASRec's implementation)::

        x = x + Dropout(Attention(LN(x)))
        x = x + Dropout(FeedForward(LN(x)))

    Post-LN (``norm_first=False``, as the original Transformer)::

        x = LN(x + Dropout(Attention(x)));  x = LN(x + Dropout(FeedForward(x)))

    Then padded positions are zeroed (times the (B, L, 1) float key mask), as SASRec
    does, so whatever they hold never reaches the next block.
    """

    def __init__(self, dim: int, num_heads: int | None = None, attention: str = "softmax",
                 hidden: int | None = None, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = True, attention_options: dict | None = None):
        super().__init__()
        self.norm_first = norm_first
        self.attention = make_attention(attention, dim, num_heads, dropout,
                                        **(attention_options or {}))
        self.attention_norm = LayerNorm(dim)
        self.attention_dropout = Dropout(dropout)
        self.feed_forward = FeedForward(dim, hidden or dim, activation, dropout)
        self.feed_forward_norm = LayerNorm(dim)
        self.feed_forward_dropout = Dropout(dropout)

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        if self.norm_first:
            x = x + self.attention_dropout(
                self.attention(self.attention_norm(x), causal=causal, key_mask=key_mask))
            x = x + self.feed_forward_dropout(self.feed_forward(self.feed_forward_norm(x)))
        else:
            x = self.attention_norm(
                x + self.attention_dropout(self.attention(x, causal=causal, key_mask=key_mask)))
            x = self.feed_forward_norm(x + self.feed_forward_dropout(self.feed_forward(x)))
        if key_mask is not None:
            keep = backend.to_device(raw(key_mask), x.device)[:, :, None].astype(x.dtype)
            x = x * keep  # (B, L, D) * (B, L, 1)
        return x
