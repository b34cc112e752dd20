"""One process times one tinyhydra: `python separate_process_step.py before|after` imports
/tmp/wt15-<tree>/benchmarks/train_step.py, whose common.py puts that checkout first on
sys.path, and times 12 steps (after 2 untimed) of SASRec softmax and hydra at ML-1M
shapes and batches, in CPU seconds. Alternated before, after, x3:
    for i in 1 2 3; do for t in before after; do OPENBLAS_NUM_THREADS=1 \
        python separate_process_step.py $t; done; done > ml1m_separate_processes.jsonl
(/tmp/wt15-before: `git worktree add` of f990ff2; /tmp/wt15-after: a copy of 091bd05.)"""
import json
import sys
import time

TREE = sys.argv[1]
sys.path.insert(0, f"/tmp/wt15-{TREE}/benchmarks")
sys.argv = [sys.argv[0]]
import numpy as np
import train_step as ts

import tinyhydra as th

cfg = ts.Config(data="/work/shared/data/ml-1m/ml-1m.txt.gz")
rng = np.random.default_rng(0)
batches, _ = ts.load_batches(cfg, 14, rng)
out = {"tinyhydra": th.__file__}
steps = {}
for kind in ("softmax", "hydra"):
    model, opt = ts.tinyhydra_model(cfg, kind, cfg.seq_len)
    steps[kind] = ts.tinyhydra_step(cfg, model, opt, np)
runs = {k: [] for k in steps}
for i, b in enumerate(batches):
    for kind, step in steps.items():
        t = time.process_time(); step(b); dt = time.process_time() - t
        if i >= 2: runs[kind].append(dt)
for k, v in runs.items():
    out[k] = {"min": min(v), "median": float(np.median(v))}
print(json.dumps(out))
