"""One process times one tinyhydra checkout at the tiny configuration (B 8, L 16, D 16,
3,416 items, synthetic ids), where the engine's Python is a large part of a step:
`python tiny_separate_process_step.py ROOT MODEL` times 600 steps (the first 120 untimed)
of MODEL (sasrec or hydrarec-uni) and prints the medians (wall, user, system time, page faults).
    for i in 1 2 3; do for t in /tmp/before /tmp/after; do for m in sasrec hydrarec-uni; do
        OPENBLAS_NUM_THREADS=1 python tiny_separate_process_step.py $t $m; done; done; done"""
import resource
import sys
import time
from types import SimpleNamespace

ROOT, NAME = sys.argv[1], sys.argv[2]
sys.path.insert(0, ROOT)
import numpy as np  # noqa: E402

import tinyhydra as th  # noqa: E402
from tinyhydra import models, optim  # noqa: E402

rng = np.random.default_rng(0)
th.manual_seed(0)
model = models.build_model(NAME, 3416, max_len=16, dim=16, dropout=0.2)
opt = optim.Adam(model.parameters(), lr=1e-3)
model.train()
rows = []
for i in range(600):
    seqs = rng.integers(1, 3417, size=(8, 16))
    batch = SimpleNamespace(inputs=seqs, targets=np.roll(seqs, -1, 1))
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    loss = model.loss(batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    rows.append((t1 - t0, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt))
m = np.median(np.array(rows[120:]), axis=0)
print(f"{th.__file__} {NAME}: wall {m[0] * 1e3:.3f} ms, user {m[1] * 1e3:.3f} ms, "
      f"system {m[2] * 1e3:.3f} ms, {m[3]:.0f} page faults per step")
