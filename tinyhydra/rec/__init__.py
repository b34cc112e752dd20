"""``tinyhydra.rec``: sequential recommendation with the layers of :mod:`tinyhydra.nn`.

Read in this order:

1. :mod:`.data`: files to interaction sequences, the leave-one-out split and batches;
2. :mod:`.models`: SASRec and BERT4Rec encoders and their Hydra variants (HydraRecUni,
   HydraRecBi, ...), with the registry ``MODELS`` that names them;
3. :mod:`.metrics`: HR@k and NDCG@k, full ranking and sampled, with the registry ``METRICS``.
"""
