"""Answers to 04_encoders.ipynb: the encoders' attention mask and a full-ranking rank."""
import numpy as np

__all__ = ["attention_mask", "rank_of_target"]


def attention_mask(ids, causal):
    """(B, L, L) bool: query i may attend to key t when t is a real item (and t <= i if causal)."""
    length = ids.shape[1]
    mask = np.broadcast_to((ids != 0)[:, None, :], (len(ids), length, length))
    return mask & np.tril(np.ones((length, length), dtype=bool)) if causal else mask.copy()


def rank_of_target(scores, target, exclude):
    """Candidates: items 1..V that are not excluded (the target always is one); ties count against."""
    candidate = ~exclude
    candidate[0] = False
    candidate[target] = False
    return int((scores[candidate] >= scores[target]).sum())
