"""``tinyhydra.rec``: sequential recommendation with the layers of :mod:`tinyhydra.nn`.

Read in this order:

1. :mod:`.data`: files to interaction sequences, the leave-one-out split and batches;
2. :mod:`.models`: SASRec and BERT4Rec encoders and their Hydra variants (HydraRecUni,
   HydraRecBi, ...), each registered under its CLI name;
3. :mod:`.registry`: the registry ``MODELS`` that names them (direction, attention kind,
   heads, summary) and ``register_model``, the way a new model gets in;
4. :mod:`.metrics`: HR@k and NDCG@k, full ranking and sampled, with the registry ``METRICS``.
"""
from . import models  # noqa: F401  (registers the built-in models in MODELS)
