"""Training-step time of one tinyhydra checkout, alone in its process: before/after tables.

    python benchmarks/checkout_step.py ROOT [--data PATH | --tiny] [--models M,M] [--steps N]

ROOT is the root of a checkout (a ``git worktree`` or a ``git archive`` copy of a commit).
This script imports only NumPy and ROOT/tinyhydra (ROOT first on ``sys.path``, nothing of
this checkout), builds each model of ``--models`` with its Adam, and times ``--steps``
training steps after ``--warmup`` untimed ones: ``zero_grad``, ``model.loss(batch)``
(full-softmax cross-entropy), ``backward`` and ``Adam.step``, the models taking turns step
by step. Each step is read with the process's CPU clock, the wall clock, user and system
time and minor page faults. It prints one JSON line: the tinyhydra it timed and, per model,
the median and fastest CPU milliseconds, the median wall, user and system milliseconds and
the mean page faults per step.

Two configurations:

* default: ML-1M shapes (B 128, L 200, D 50, 2 blocks); batches from ``--data`` (a
  SASRec-format file such as ml-1m.txt.gz, read by ROOT's own reader) or, without it,
  synthetic with every position real and 3,416 items, as ``benchmarks/train_step.py``;
  2 + 12 steps;
* ``--tiny``: B 8, L 16, D 16, 3,416 items, synthetic ids, where the engine's Python is a
  large part of a step; 120 + 480 steps.

Two libraries in one process (``train_step.py --compare-with``) share one heap, and where
one lands disturbs the other; one process per checkout, alternated, is the comparison.
results/fused_cpu/ holds such a comparison (ROOTs /tmp/before and /tmp/after, ``git
archive`` copies of 520a6a4 and 9a7dbad, on 2 shared cores), made by this loop::

    for i in 1 2 3; do for t in /tmp/before /tmp/after; do OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/checkout_step.py $t --data ml-1m.txt.gz; done; done \\
        > results/fused_cpu/ml1m_separate_processes.jsonl
    for i in 1 2 3; do for t in /tmp/before /tmp/after; do for m in sasrec hydrarec-uni; do \\
        OPENBLAS_NUM_THREADS=1 python benchmarks/checkout_step.py $t --tiny --models $m; \\
        done; done; done > results/fused_cpu/tiny_separate_processes.txt

The files there were written by the two scripts this one replaces (in git up to commit
829cf2c: results/fused_cpu/separate_process_step.py and tiny_separate_process_step.py), so
their lines have those scripts' layout; the same steps, counters and medians.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from itertools import cycle, islice
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SHAPES = {"ml-1m": {"batch": 128, "length": 200, "dim": 50, "warmup": 2, "steps": 12},
          "tiny": {"batch": 8, "length": 16, "dim": 16, "warmup": 120, "steps": 480}}
NUM_ITEMS = 3416  # ML-1M's, for synthetic batches


def import_checkout(root: str):
    """ROOT's tinyhydra package, imported as ``tinyhydra`` (ROOT first on sys.path)."""
    init = Path(root).resolve() / "tinyhydra" / "__init__.py"
    if not init.exists():
        raise SystemExit(f"checkout_step.py: {root} has no tinyhydra/__init__.py; pass the root of a checkout")
    sys.path.insert(0, str(init.parents[1]))
    return importlib.import_module("tinyhydra")


def data_module(lib):
    """ROOT's data pipeline: tinyhydra.rec.data, or tinyhydra.data before the sub-packages."""
    for name in ("rec.data", "data"):
        try:
            return importlib.import_module(f"{lib.__name__}.{name}")
        except ModuleNotFoundError:
            continue
    raise SystemExit("checkout_step.py: no tinyhydra.rec.data or tinyhydra.data in that checkout")


def make_batches(lib, path: str | None, count: int, batch: int, length: int, rng) -> tuple[list, int]:
    """``count`` batches and the number of items: from the file ``path`` (cycled epochs of
    ROOT's ``causal_batches``) or synthetic, every position real."""
    if path:
        data = data_module(lib)
        split = data.leave_one_out(data.read_sasrec_txt(path))
        epoch = data.causal_batches(split, batch, length, rng)
        return list(islice(cycle(epoch), count)), split.num_items
    batches = []
    for _ in range(count):
        inputs = rng.integers(1, NUM_ITEMS + 1, size=(batch, length))
        batches.append(SimpleNamespace(inputs=inputs, targets=np.roll(inputs, -1, 1)))
    return batches, NUM_ITEMS


def training_step(model, optimizer):
    def step(batch):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    return step


def time_steps(steps: dict, batches: list, warmup: int) -> dict:
    """The one timing loop: every step of every model (in turn) read on five counters; the
    first ``warmup`` batches untimed. Returns {model: {counter: [per timed step]}}."""
    rows = {name: [] for name in steps}
    for i, batch in enumerate(batches):
        for name, step in steps.items():
            r0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
            step(batch)
            w1, c1, r1 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
            if i >= warmup:
                rows[name].append((c1 - c0, w1 - w0, r1.ru_utime - r0.ru_utime,
                                   r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt))
    return {name: dict(zip(("cpu", "wall", "user", "system", "faults"), np.array(r).T))
            for name, r in rows.items()}


def summary(runs: dict) -> dict:
    ms = {key: 1e3 * values for key, values in runs.items() if key != "faults"}
    return {"cpu_ms_median": float(np.median(ms["cpu"])), "cpu_ms_min": float(ms["cpu"].min()),
            "wall_ms_median": float(np.median(ms["wall"])), "user_ms_median": float(np.median(ms["user"])),
            "system_ms_median": float(np.median(ms["system"])),
            "page_faults_per_step": float(runs["faults"].mean())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="root of the checkout whose tinyhydra is timed")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="SASRec-format file at ML-1M shapes (default: synthetic batches)")
    source.add_argument("--tiny", action="store_true", help="B 8, L 16, D 16, synthetic ids")
    parser.add_argument("--models", default="sasrec,hydrarec-uni", help="comma-separated model names")
    parser.add_argument("--steps", type=int, help="timed steps (default 12, or 480 with --tiny)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2, or 120 with --tiny)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    shape = SHAPES["tiny" if args.tiny else "ml-1m"]
    warmup = shape["warmup"] if args.warmup is None else args.warmup
    count = warmup + (shape["steps"] if args.steps is None else args.steps)
    if count <= warmup:
        parser.error("--steps must be at least 1")

    lib = import_checkout(args.root)
    models, optim = (importlib.import_module(f"{lib.__name__}.{name}") for name in ("models", "optim"))
    batches, num_items = make_batches(lib, args.data, count, shape["batch"], shape["length"],
                                      np.random.default_rng(args.seed))
    steps = {}
    for name in args.models.split(","):
        lib.manual_seed(args.seed)
        model = models.build_model(name, num_items, max_len=shape["length"], dim=shape["dim"],
                                   num_layers=2, dropout=0.2)
        model.train()
        steps[name] = training_step(model, optim.Adam(model.parameters(), lr=1e-3))
    out = {"tinyhydra": lib.__file__, "data": args.data or "synthetic", "batch": shape["batch"],
           "length": shape["length"], "dim": shape["dim"], "warmup": warmup, "steps": count - warmup}
    out["models"] = {name: summary(runs) for name, runs in time_steps(steps, batches, warmup).items()}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
