"""The training application of ``examples/train.py``: its configuration (:mod:`.config`,
one dataclass whose fields are the flags), the command line (:mod:`.cli`: parsing, one-line
errors and exit statuses) and run folders (:mod:`.runs`: checkpoints, resume, metrics.json).
It uses the library as any user would; the library knows nothing of it.
"""
