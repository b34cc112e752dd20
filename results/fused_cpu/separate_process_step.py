"""One process times one tinyhydra checkout: `python separate_process_step.py ROOT` imports
ROOT/benchmarks/train_step.py and ROOT/tinyhydra (ROOT first on sys.path), and times 12
steps (after 2 untimed) of SASRec (softmax) and HydraRecUni (hydra) at ML-1M
shapes and batches, in CPU seconds, with the page faults of the timed steps.
Alternated before, after, x3 (ROOTs: `git archive` copies of the two commits):
    for i in 1 2 3; do for t in /tmp/before /tmp/after; do OPENBLAS_NUM_THREADS=1 \
        python separate_process_step.py $t; done; done > ml1m_separate_processes.jsonl"""
import json
import resource
import sys
import time

ROOT = sys.argv[1]
sys.path[:0] = [ROOT, f"{ROOT}/benchmarks"]
sys.argv = [sys.argv[0]]
import numpy as np  # noqa: E402
import train_step as ts  # noqa: E402

import tinyhydra as th  # noqa: E402

cfg = ts.Config(data="/work/shared/data/ml-1m/ml-1m.txt.gz")
batches, _ = ts.load_batches(cfg, 14, np.random.default_rng(0))
out = {"tinyhydra": th.__file__}
steps = {}
for kind in ("softmax", "hydra"):
    model, opt = ts.tinyhydra_model(cfg, kind, cfg.seq_len)
    steps[kind] = ts.tinyhydra_step(cfg, model, opt, np)
runs = {k: [] for k in steps}
faults = {k: 0 for k in steps}
for i, b in enumerate(batches):
    for kind, step in steps.items():
        f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.process_time()
        step(b)
        dt = time.process_time() - t
        if i >= 2:
            runs[kind].append(dt)
            faults[kind] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f
for k, v in runs.items():
    out[k] = {"min": min(v), "median": float(np.median(v)), "page_faults_per_step": faults[k] // len(v)}
print(json.dumps(out))
