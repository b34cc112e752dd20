"""Answers to 05_results.ipynb: the two metrics of the results tables, from 0-based ranks."""
import numpy as np

__all__ = ["ndcg_at_k", "hit_rate_at_k"]


def ndcg_at_k(ranks, k):
    """One relevant item, so IDCG = 1 and NDCG@k = 1 / log2(rank + 2) when rank < k, else 0."""
    ranks = np.asarray(ranks)
    return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))


def hit_rate_at_k(ranks, k):
    return float(np.mean(np.asarray(ranks) < k))
