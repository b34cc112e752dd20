"""SASRec and BERT4Rec encoders, with softmax, Hydra or linear attention.

Both models read LEFT-padded item-id sequences (B, L): 0 is padding and items are
1..num_items. They share :class:`SequentialRecommender`: item and learned position
embeddings, a stack of :class:`~tinyhydra.nn.TransformerBlock` (pre-LN), an output
layer tied to the item embedding (scores = h E^T), the losses and ``predict_scores``.
They differ in the direction of attention and in the layers around the blocks:

====================  ==========================  =================================
                      SASRec (Kang & McAuley)      BERT4Rec (Sun et al.)
====================  ==========================  =================================
attention             causal                       bidirectional
embedding             E[x] sqrt(D) + P, dropout    LayerNorm(E[x] + P), dropout
feed-forward          ReLU, hidden = D             GELU, hidden = 4 D
after the blocks      LayerNorm                    Linear + GELU + LayerNorm
scores                h E^T                        h E^T + b ([MASK] row left out)
====================  ==========================  =================================

Each attention kind is a subclass with a name of its own: HydraRecUni / HydraRecBi
(the paper's Hydra), DecayedHydraRecUni / DecayedHydraRecBi (Hydra whose context
decays with distance), LinearRecUni / LinearRecBi (elu+1), each registered under its CLI
name by :func:`~tinyhydra.rec.registry.register_model`.

Positions are right-aligned: the last input column always gets position
``max_len - 1``. An input shorter than ``max_len`` is therefore exactly the tail of
the same input left-padded to ``max_len``, so extra left padding changes nothing.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..engine import backend
from ..engine.embedding import as_ids
from ..engine.graph import no_grad
from ..engine.tensor import Tensor
from ..nn import Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, TransformerBlock
from .registry import MODELS, ModelEntry, build_model, register_model

__all__ = [
    "SequentialRecommender", "SASRec", "BERT4Rec", "HydraRecUni", "HydraRecBi",
    "DecayedHydraRecUni", "DecayedHydraRecBi", "LinearRecUni", "LinearRecBi", "MODELS", "ModelEntry",
    "register_model", "LOSSES", "build_model",
]

LOSSES = ("ce", "sampled", "bce")
DEFAULT_NUM_NEGATIVES = 100  # "sampled" loss when the batch carries no negatives


class SequentialRecommender(Module):
    """The shared encoder; subclasses set ``causal`` and define ``embed`` and ``head``.

    ``num_embeddings`` is the size of the item table (num_items + 1, plus 1 for a
    [MASK] token); rows past ``num_items`` are never scored.
    """

    causal: bool = False
    attention_kind: str = "softmax"  # a kind of nn.make_attention; fixed by each model class
    # options of its attention layers beyond conv and causal: option -> the attribute holding it
    # (set before the blocks are built)
    attention_attributes: dict[str, str] = {}

    def __init__(self, num_items: int, max_len: int, dim: int, num_layers: int, num_heads: int,
                 dropout: float, num_embeddings: int, hidden: int, activation: str,
                 conv: int = 0):
        super().__init__()
        if num_items < 1 or max_len < 1 or dim < 1 or num_layers < 0:
            raise ValueError(
                f"{type(self).__name__}: need num_items >= 1, max_len >= 1, dim >= 1 and "
                f"num_layers >= 0; got {num_items}, {max_len}, {dim}, {num_layers}")
        if conv < 0:
            raise ValueError(f"{type(self).__name__}: conv is a width (0 = off), got {conv}")
        self.num_items, self.max_len, self.dim = num_items, max_len, dim
        options = {"conv": conv, "causal": self.causal,
                   **{option: getattr(self, name) for option, name in self.attention_attributes.items()}}
        self.item_embedding = Embedding(num_embeddings, dim, padding_idx=0)
        self.position_embedding = Embedding(max_len, dim)
        self.embedding_dropout = Dropout(dropout)
        self.blocks = ModuleList(
            TransformerBlock(dim, num_heads, self.attention_kind, hidden, dropout, activation,
                             attention_options=options)
            for _ in range(num_layers))
        self.output_bias = None  # BERT4Rec: a Parameter (num_items + 1,)

    # ---------------------------------------------------- subclass hooks
    def embed(self, ids) -> Tensor:
        """ids (B, L) on the model's device -> input of the first block (B, L, D)."""
        raise NotImplementedError

    def head(self, x: Tensor) -> Tensor:
        """Output of the last block (B, L, D) -> hidden states (B, L, D)."""
        raise NotImplementedError

    # ----------------------------------------------------------- encoder
    def _ids(self, ids, name="inputs"):
        """Int ids (numpy, backend array or lists) validated on the host, on the model's device;
        errors name them ``name``. Inputs must be left-padded: no 0 after a real item."""
        model = type(self).__name__
        ids = as_ids(ids, model, name)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ValueError(f"{model}: {name} must have shape (B, L) with B, L >= 1, got "
                             f"{ids.shape}")
        if name == "targets" and not backend.is_gpu_array(ids) and ids.dtype.kind in "iu" and (
                ids.min() < 0 or ids.max() > self.num_items):
            raise ValueError(f"{model}: targets must be item ids in 1..{self.num_items} (0 = no "
                             f"target), got values from {ids.min()} to {ids.max()}")
        ids = self.item_embedding.prepare_ids(ids, model, name)
        if name == "inputs" and not backend.is_gpu_array(ids):
            real = ids != 0
            gap = real[:, :-1] & ~real[:, 1:]  # a real item followed by a padding 0
            if gap.any():
                row = int(gap.any(axis=1).argmax())
                raise ValueError(f"{model}: inputs row {row} has a padding 0 after a real item; "
                                 f"inputs are LEFT-padded (0s first, the latest item last)")
        return ids

    def _positions(self, length: int) -> Tensor:
        """Right-aligned position embeddings (L, D): the last column gets max_len - 1."""
        if length > self.max_len:
            raise ValueError(
                f"{type(self).__name__}: sequences of length {length} exceed "
                f"max_len={self.max_len}")
        return self.position_embedding.weight[self.max_len - length:]  # (L, D)

    def encode(self, inputs) -> Tensor:
        """inputs (B, L) left-padded int ids -> hidden states (B, L, D).

        Padded positions are zeroed before the first block and after each block, and
        no query attends to them (key_mask), so they never reach a real position.
        """
        ids = self._ids(inputs)
        key_mask = ids != 0  # (B, L) True = real item
        x = self.embed(ids)  # (B, L, D)
        x = x * key_mask[:, :, None].astype(x.dtype)  # (B, L, D) * (B, L, 1)
        for block in self.blocks:
            x = block(x, causal=self.causal, key_mask=key_mask)
        return self.head(x)

    # ------------------------------------------------------------ scores
    def _scores(self, hidden: Tensor, first: int) -> Tensor:
        """hidden (..., D) -> scores for item ids first..num_items: (..., num_items + 1 - first)."""
        weight = self.item_embedding.weight  # (num_embeddings, D)
        if first != 0 or weight.shape[0] != self.num_items + 1:
            weight = weight[first:self.num_items + 1]  # drop padding / [MASK] rows
        bias = self.output_bias
        if bias is not None and first != 0:
            bias = bias[first:]
        return F.linear(hidden, weight, bias)

    def item_scores(self, hidden: Tensor) -> Tensor:
        """hidden (..., D) -> scores (..., num_items + 1) over item ids; column 0 is padding."""
        return self._scores(hidden, first=0)

    def _candidate_scores(self, hidden: Tensor, ids) -> Tensor:
        """hidden (M, D), candidate item ids (M, C) -> scores (M, C), one per candidate."""
        num_rows, num_candidates = ids.shape
        candidates = F.embedding(ids, self.item_embedding.weight)  # (M, C, D)
        scores = candidates @ hidden.reshape(num_rows, self.dim, 1)  # (M, C, 1)
        scores = scores.reshape(num_rows, num_candidates)  # (M, C)
        if self.output_bias is not None:
            bias = F.embedding(ids, self.output_bias.reshape(-1, 1))  # (M, C, 1)
            scores = scores + bias.reshape(num_rows, num_candidates)
        return scores

    def predict_scores(self, inputs) -> np.ndarray:
        """Scores (B, num_items + 1) as a host array, from the hidden state at the LAST position.

        Runs in eval mode (dropout off, the previous mode is restored) and under
        ``no_grad``. Column 0 is the padding id: exclude it when ranking. For BERT4Rec
        the inputs must already end with ``mask_token``.
        """
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                scores = self.item_scores(self.encode(inputs)[:, -1, :])  # (B, num_items + 1)
        finally:
            self.train(was_training)
        return backend.as_numpy(scores.data)

    # ------------------------------------------------------------- losses
    def _negatives(self, batch, rows, num_negatives):
        """(M, N) negative ids for the selected positions ``rows`` (flat indices into B*L).

        From ``batch.negatives`` (B, L, N) when present (its first ``num_negatives``
        columns if given), else ``num_negatives`` (default 100) ids drawn uniformly from
        1..num_items (a negative may equal the positive, as in BERT4Rec's sampler).
        """
        negatives = getattr(batch, "negatives", None)
        if negatives is None:
            count = DEFAULT_NUM_NEGATIVES if num_negatives is None else num_negatives
            sampled = backend.default_rng(np).integers(1, self.num_items + 1, (len(rows), count))
            return self._ids(sampled, "negatives")
        negatives = self.item_embedding.prepare_ids(negatives, type(self).__name__, "negatives")
        if negatives.ndim != 3:
            raise ValueError(f"negatives must have shape (B, L, N), got {negatives.shape}")
        if num_negatives is not None:
            if num_negatives > negatives.shape[-1]:
                raise ValueError(f"num_negatives={num_negatives} but the batch has only "
                                 f"{negatives.shape[-1]} negatives per position")
            negatives = negatives[..., :num_negatives]
        return negatives.reshape(-1, negatives.shape[-1])[rows]  # (B*L, N) -> (M, N)

    def loss(self, batch, loss: str = "ce", num_negatives: int | None = None) -> Tensor:
        """Mean training loss over the positions with a target (``batch.targets`` != 0).

        ``batch`` has ``inputs`` (B, L), ``targets`` (B, L) (0 = no target) and, for
        SASRec, ``negatives`` (B, L, N). Only the M target positions are gathered from
        the hidden states, so logits are (M, ...) rather than (B*L, ...).

        * ``"ce"``: softmax cross-entropy over ALL items 1..num_items. The padding (and
          [MASK]) rows are left out of the softmax rather than masked with -inf, so
          class c is item c + 1.
        * ``"sampled"``: softmax cross-entropy over [positive, N negatives] per
          position, the positive being class 0. Negatives: see :meth:`_negatives`.
        * ``"bce"``: SASRec's loss, -log s(pos) - log(1 - s(neg)) with the FIRST
          negative, averaged over positions (the sum of the two terms, like SASRec's
          code; i.e. twice the mean over the 2M logits).
        """
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
        targets = self._ids(batch.targets, "targets")  # checked before the forward pass
        hidden = self.encode(batch.inputs)  # (B, L, D)
        if targets.shape != hidden.shape[:2]:
            raise ValueError(f"{type(self).__name__}: targets of shape {targets.shape} do not "
                             f"match inputs of shape {hidden.shape[:2]}")
        xp = backend.get_array_module(targets)
        targets = targets.reshape(-1)  # (B*L,)
        rows = xp.flatnonzero(targets)  # (M,) positions with a target
        if rows.size == 0:
            raise ValueError("the batch has no target positions (every target is 0)")
        positives = targets[rows]  # (M,)
        if positives.max() > self.num_items:  # one reduction; only the [MASK] id can get here
            raise ValueError(f"targets must be item ids in 1..{self.num_items}")
        hidden = hidden.reshape(-1, self.dim)[rows]  # (B*L, D) -> (M, D)

        if loss == "ce":
            return F.cross_entropy(self._scores(hidden, first=1), positives - 1)  # (M, num_items)
        negatives = self._negatives(batch, rows, 1 if loss == "bce" else num_negatives)
        candidates = xp.concatenate([positives[:, None], negatives], axis=1)  # (M, 1 + N)
        scores = self._candidate_scores(hidden, candidates)  # (M, 1 + N)
        if loss == "sampled":
            return F.cross_entropy(scores, xp.zeros(len(rows), dtype=rows.dtype))
        labels = xp.zeros(scores.shape, dtype=scores.dtype)  # (M, 2): positive 1, negative 0
        labels[:, 0] = 1
        return 2.0 * F.binary_cross_entropy_with_logits(scores, labels)


@register_model("sasrec")
class SASRec(SequentialRecommender):
    """SASRec (Kang & McAuley 2018): a causal encoder with softmax attention.

    Embedding E (num_items + 1, D) with padding row 0, scaled by sqrt(D), plus learned
    positions; dropout; blocks with a ReLU feed-forward of hidden size D; a final
    LayerNorm. Scores h E^T share E. ``conv`` > 0: a causal depthwise convolution of
    that width before each block's Q/K/V projections.
    """

    causal = True

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 50, num_layers: int = 2,
                 num_heads: int = 1, dropout: float = 0.2, conv: int = 0):
        super().__init__(num_items, max_len, dim, num_layers, num_heads, dropout,
                         num_embeddings=num_items + 1, hidden=dim, activation="relu", conv=conv)
        self.final_norm = LayerNorm(dim)

    def embed(self, ids) -> Tensor:
        x = F.embedding(ids, self.item_embedding.weight) * math.sqrt(self.dim)  # (B, L, D)
        return self.embedding_dropout(x + self._positions(ids.shape[1]))

    def head(self, x: Tensor) -> Tensor:
        return self.final_norm(x)


HYDRA_ATTRIBUTES = {"normalize": "head_norm"}  # the Hydra models' attention_attributes
DECAY_ATTRIBUTES = {"max_len": "max_len", "learn_decay": "learn_decay"}  # the decayed models'


@register_model("hydrarec-uni")
class HydraRecUni(SASRec):
    """HydraRecUni, the HydraRec paper's unidirectional model: SASRec whose attention is
    Hydra (``F.hydra_attention``, causal; one head per feature). ``num_heads`` H dividing
    dim: multi-head cosine linear attention with heads of dim/H features instead;
    ``head_norm`` where its feature map normalises ("global" over all features, as Hydra,
    or "per_head")."""

    attention_kind = "hydra"
    attention_attributes = HYDRA_ATTRIBUTES

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 50, num_layers: int = 2,
                 dropout: float = 0.2, conv: int = 0, num_heads: int | None = None,
                 head_norm: str = "global"):
        self.head_norm = head_norm
        super().__init__(num_items, max_len, dim, num_layers, num_heads, dropout, conv)


@register_model("hydrarec-uni-decay")
class DecayedHydraRecUni(SASRec):
    """HydraRecUni with decayed Hydra attention (``nn.DecayedHydraAttention``): the causal
    context kv_i = sum_{t<=i} a^(i-t) phi(k_t) * v_t forgets old items at a learned rate
    per feature (``learn_decay=False``: fixed half-lives 1 .. max_len). Not in the paper."""

    attention_kind = "decayed-hydra"
    attention_attributes = DECAY_ATTRIBUTES

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 50, num_layers: int = 2,
                 dropout: float = 0.2, conv: int = 0, learn_decay: bool = True):
        self.learn_decay = learn_decay
        super().__init__(num_items, max_len, dim, num_layers, 1, dropout, conv)


@register_model("linrec-uni")
class LinearRecUni(SASRec):
    """SASRec with elu+1 linear attention (Katharopoulos et al. 2020), causal."""

    attention_kind = "linear"


@register_model("bert4rec")
class BERT4Rec(SequentialRecommender):
    """BERT4Rec (Sun et al. 2019): a bidirectional cloze encoder with softmax attention.

    Embedding E (num_items + 2, D): 0 is padding, ``mask_token = num_items + 1`` is
    [MASK]. LayerNorm(E[x] + P) and dropout; blocks with a GELU feed-forward of hidden
    size 4 D; then Linear + GELU + LayerNorm; scores h E_items^T + b, where E_items
    leaves the [MASK] row out. ``mask_prob`` is the cloze masking rate, stored for the
    batch builder (the model itself masks nothing).
    """

    causal = False

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 64, num_layers: int = 2,
                 num_heads: int = 2, dropout: float = 0.1, mask_prob: float = 0.2,
                 conv: int = 0):
        super().__init__(num_items, max_len, dim, num_layers, num_heads, dropout,
                         num_embeddings=num_items + 2, hidden=4 * dim, activation="gelu", conv=conv)
        self.mask_token = num_items + 1
        self.mask_prob = mask_prob
        self.embedding_norm = LayerNorm(dim)
        self.output_projection = Linear(dim, dim)
        self.output_norm = LayerNorm(dim)
        self.output_bias = Parameter(np.zeros(num_items + 1, dtype=np.float32))

    def embed(self, ids) -> Tensor:
        x = F.embedding(ids, self.item_embedding.weight) + self._positions(ids.shape[1])
        return self.embedding_dropout(self.embedding_norm(x))  # (B, L, D)

    def head(self, x: Tensor) -> Tensor:
        return self.output_norm(F.gelu(self.output_projection(x)))


@register_model("hydrarec-bi")
class HydraRecBi(BERT4Rec):
    """HydraRecBi, the HydraRec paper's bidirectional model: BERT4Rec whose attention is
    Hydra (``F.hydra_attention``; one head per feature). ``num_heads`` and ``head_norm`` as
    HydraRecUni's."""

    attention_kind = "hydra"
    attention_attributes = HYDRA_ATTRIBUTES

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.1, mask_prob: float = 0.2, conv: int = 0,
                 num_heads: int | None = None, head_norm: str = "global"):
        self.head_norm = head_norm
        super().__init__(num_items, max_len, dim, num_layers, num_heads, dropout, mask_prob, conv)


@register_model("hydrarec-bi-decay")
class DecayedHydraRecBi(BERT4Rec):
    """HydraRecBi with decayed Hydra attention: one decay per feature for earlier and one
    for later items, so the [MASK] at the end hears its recent neighbours loudest. Not in
    the paper."""

    attention_kind = "decayed-hydra"
    attention_attributes = DECAY_ATTRIBUTES

    def __init__(self, num_items: int, max_len: int = 200, dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.1, mask_prob: float = 0.2, conv: int = 0,
                 learn_decay: bool = True):
        self.learn_decay = learn_decay
        super().__init__(num_items, max_len, dim, num_layers, 1, dropout, mask_prob, conv)


@register_model("linrec-bi")
class LinearRecBi(BERT4Rec):
    """BERT4Rec with elu+1 linear attention (Katharopoulos et al. 2020), bidirectional."""

    attention_kind = "linear"
