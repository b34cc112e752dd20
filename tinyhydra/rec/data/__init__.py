"""Interaction data for sequential recommendation: readers, splits, batches.

The whole pipeline in one picture::

    file --read_*--> Interactions --leave_one_out--> Split --causal_batches--> CausalBatch (SASRec)
                                                          --cloze_batches---> ClozeBatch  (BERT4Rec)
                                                          --eval_inputs-----> (users, inputs, targets)

One module per step: :mod:`.readers` (files -> Interactions, and synthetic data),
:mod:`.grouplens` (MovieLens ratings), :mod:`.download` (a checked file in a cache),
:mod:`.datasets` (the registries of file layouts and named data sets), :mod:`.split`
(leave-one-out and the evaluation inputs), :mod:`.batches` (training epochs and windows).

Conventions used everywhere:

* item ids are ``1..num_items``; id ``0`` is padding (and "no target");
* a user's sequence is an int64 array of item ids in time order, oldest first;
* batches are left-padded: the most recent item is always in the last column,
  so position ``-1`` is "now" for every row.

Everything random takes an explicit ``numpy.random.Generator`` (or a ``seed``),
so a run is reproducible from its seed alone.
"""
from ...errors import DataFormatError, DownloadError
from .batches import (
    CausalBatch,
    ClozeBatch,
    Epoch,
    causal_batches,
    cloze_batches,
    training_windows,
)
from .datasets import (
    DATA_FORMATS,
    DATASETS,
    DataFormat,
    DataSet,
    detect_format,
    load_dataset,
    register_data_format,
)
from .download import ML1M_MD5, ML1M_URL, default_cache_dir, download_file, download_ml1m, file_digest
from .grouplens import read_movielens_ratings
from .readers import (
    Interactions,
    read_per_user_txt,
    read_sasrec_txt,
    synthetic_interactions,
    write_sasrec_txt,
)
from .split import (
    Split,
    eval_inputs,
    fewest_unseen_items,
    interacted_items,
    leave_one_out,
    membership_mask,
    pad_left,
    sample_negatives_for_eval,
    seen_items,
)

__all__ = [
    "DataFormatError", "DownloadError", "Interactions", "read_sasrec_txt", "read_movielens_ratings",
    "read_per_user_txt", "load_dataset", "detect_format", "register_data_format", "DATA_FORMATS",
    "DATASETS", "DataFormat",
    "DataSet", "download_file", "file_digest", "write_sasrec_txt", "synthetic_interactions", "ML1M_URL", "ML1M_MD5",
    "default_cache_dir", "download_ml1m", "Split", "leave_one_out", "pad_left", "membership_mask",
    "eval_inputs", "seen_items", "sample_negatives_for_eval", "fewest_unseen_items",
    "interacted_items", "Epoch", "training_windows", "CausalBatch", "ClozeBatch", "causal_batches", "cloze_batches",
]
