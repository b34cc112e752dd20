"""Plain and decayed Hydra attention: tinyhydra against the same maths in PyTorch eager.

One forward AND backward of the attention op alone, causal and bidirectional, float32 q, k, v
of shape (B, L, D) = (2, L, 64), a fixed random cotangent, ``--threads`` for both libraries.
The PyTorch side computes the same maths (cosine feature map; torch.cumsum for causal plain
Hydra, a sum over L for bidirectional; for the decayed form the two-level prefix sum of
tinyhydra.attention.scan, as PyTorch has no decayed cumsum, along and against the sequence
when bidirectional) and is differentiated by torch.autograd. Each of ``--repeats`` rounds
runs every contestant once, one after the other, so drift in the machine's load hits all
alike; each figure is the median over the rounds.

    python benchmarks/hydra_vs_torch.py --threads 1
    python benchmarks/hydra_vs_torch.py --threads 1 --lengths 512 4096 --repeats 3

In one process both libraries share glibc's allocator, and importing tinyhydra makes it keep
freed memory for PyTorch too (tinyhydra/engine/memory.py). ``--processes N`` times each side
in processes of its own instead, N rounds of four: tinyhydra as a notebook gets it (freed
memory kept), PyTorch at its defaults, PyTorch with freed memory kept (the same setting), and
tinyhydra with ``TINYHYDRA_KEEP_FREED_MEMORY=0``; the medians over the rounds give the
ratios both ways:

    python benchmarks/hydra_vs_torch.py --threads 1 --processes 5 --repeats 3 --clock cpu

Needs PyTorch (``pip install torch``); prints a table and writes hydra_vs_torch.json (with
--processes, hydra_vs_torch_processes.json) to --out (default results/hydra_vs_torch_<device>/).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import common  # benchmarks/common.py: this script's folder is on sys.path
import numpy as np

from tinyhydra import functional as F
from tinyhydra.attention.scan import DIRECT
from tinyhydra.engine.tensor import Tensor

DIRECTIONS = ("causal", "bidirectional")
OPS = ("hydra", "decayed")
# --processes: (label, side timed, TINYHYDRA_KEEP_FREED_MEMORY) of the four processes of a round
PROCESSES = (("tinyhydra", "tinyhydra", "1"), ("torch at its defaults", "torch", "0"),
             ("torch, memory kept", "torch", "1"), ("tinyhydra, memory given back", "tinyhydra", "0"))


@dataclass
class Config:
    lengths: list[int] = field(default_factory=lambda: [512, 1024, 2048, 4096, 8192, 16384],
                          metadata={"help": "sequence lengths L"})
    directions: list[str] = field(default_factory=lambda: list(DIRECTIONS),
                                  metadata={"help": "causal and/or bidirectional"})
    batch: int = field(default=2, metadata={"help": "B"})
    dim: int = field(default=64, metadata={"help": "D"})
    repeats: int = field(default=7, metadata={"help": "timed runs per point (median reported)"})
    warmup: int = field(default=2, metadata={"help": "untimed runs first"})
    threads: int = field(default=1, metadata={"help": "BLAS and PyTorch threads"})
    clock: str = field(default="wall", metadata={"help": "wall, or cpu: this process's CPU time (one thread: "
                                                   "what a run costs whatever else the machine runs)",
                                                   "choices": tuple(common.CLOCKS)})
    side: str = field(default="both", metadata={"help": "the library this process times",
                                                  "choices": ("both", "tinyhydra", "torch")})
    processes: int = field(default=0, metadata={"help": "N > 0: N rounds of one process per side and "
                                                        "allocator setting (see the docstring)"})
    seed: int = 0
    device: str = "cpu"
    out: str = field(default="", metadata={"help": common.OUT_HELP})


# ------------------------------------------------------------------ the PyTorch side
def torch_prefix_sum(torch, x, decay):
    """y_i = a y_{i-1} + x_i along dim -2, a (D,): tinyhydra.attention.scan's two levels (a loop over
    the ~sqrt(L) positions of a chunk, then the states carried between chunks)."""
    length, dim = x.shape[-2:]
    chunk = length if length <= DIRECT else max(DIRECT, math.isqrt(length))
    count = -(-length // chunk)
    x = torch.nn.functional.pad(x, (0, 0, 0, count * chunk - length))
    x = x.reshape(*x.shape[:-2], count, chunk, dim)  # (..., n, C, D)
    rows = [x[..., 0, :]]
    for j in range(1, chunk):  # out-of-place, so autograd can go back through it
        rows.append(x[..., j, :] + decay * rows[-1])
    y = torch.stack(rows, dim=-2)
    if count > 1:
        ends = torch_prefix_sum(torch, y[..., -1, :], decay**chunk)  # (..., n, D)
        carried = torch.nn.functional.pad(ends[..., :-1, :], (0, 0, 1, 0))[..., None, :]
        y = y + carried * decay ** torch.arange(1, chunk + 1)[:, None]  # a^(j+1) * state
    return y.reshape(*y.shape[:-3], count * chunk, dim)[..., :length, :]


def torch_hydra(torch, q, k, v, decay=None, causal=True):
    """(Decayed) Hydra: phi(q) * kv with kv the causal prefix sum (decayed: per feature) of
    phi(k) * v, or, bidirectional, its sum over the sequence (decayed: the scan along plus the
    scan against the sequence, less the current item counted twice); autograd for the backward."""
    normalize = torch.nn.functional.normalize
    u = normalize(k, dim=-1, eps=1e-12) * v  # (B, L, D)
    if decay is None:
        kv = u.cumsum(-2) if causal else u.sum(-2, keepdim=True)
    elif causal:
        kv = torch_prefix_sum(torch, u, decay)
    else:  # decay (2, D): one per direction, as F.decayed_hydra_attention
        later = torch_prefix_sum(torch, u.flip(-2), decay[1]).flip(-2)
        kv = torch_prefix_sum(torch, u, decay[0]) + later - u
    return normalize(q, dim=-1, eps=1e-12) * kv


# ------------------------------------------------------------------------- the runs
def runs(torch, arrays, cotangent, decays, direction: str, side: str = "both"):
    """name -> a callable doing one forward + backward; ``side`` picks whose."""
    causal = direction == "causal"

    def ours(decayed):
        def run():
            tensors = [Tensor(a, requires_grad=True) for a in arrays]
            extra = [Tensor(decays[direction], requires_grad=True)] if decayed else []
            attention = F.decayed_hydra_attention if decayed else F.hydra_attention
            attention(*tensors, *extra, causal=causal).backward(cotangent)
        return run

    def theirs(decayed):
        def run():
            tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
            extra = torch.tensor(decays[direction], requires_grad=True) if decayed else None
            torch_hydra(torch, *tensors, extra, causal=causal).backward(torch.from_numpy(cotangent))
        return run

    contestants = {}
    for op in OPS:
        if side in ("both", "tinyhydra"):
            contestants[op] = ours(op == "decayed")
        if side in ("both", "torch"):
            contestants[f"{op} (torch)"] = theirs(op == "decayed")
    return contestants


def time_sides(cfg: Config, torch, rng) -> dict:
    """{direction: {L: {contestant: median seconds}}} for this process's ``cfg.side``."""
    decay = np.geomspace(0.5, 0.999, cfg.dim).astype(np.float32)
    decays = {"causal": decay, "bidirectional": np.stack([decay, decay[::-1].copy()])}
    seconds = {}
    for direction in cfg.directions:
        seconds[direction] = {}
        for length in cfg.lengths:
            arrays = [rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32) for _ in range(3)]
            cotangent = rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32)
            contestants = runs(torch, arrays, cotangent, decays, direction, cfg.side)
            timed = {name: [] for name in contestants}
            for _ in range(cfg.repeats):  # one run of each per round: load drift hits all alike
                for name, run in contestants.items():
                    timed[name] += common.time_runs(run, 1, cfg.warmup if not timed[name] else 0,
                                                    clock=common.CLOCKS[cfg.clock])
            seconds[direction][length] = {name: common.median(values) for name, values in timed.items()}
    return seconds


def print_ratios(title: str, rows: dict, over: dict) -> None:
    """One line per direction and L: tinyhydra's time over ``over``'s for each op."""
    print(title)
    print(f"{'direction':<15}{'L':>7}" + "".join(f"{op + ' ms':>14}{'x torch':>9}" for op in OPS))
    for direction, lengths in rows.items():
        for length, ours in lengths.items():
            theirs = over[direction][length]
            print(f"{direction:<15}{length:>7}" + "".join(
                f"{1e3 * ours[op]:>14.2f}{ours[op] / theirs[op + ' (torch)']:>9.2f}" for op in OPS))


def separate_processes(cfg: Config, argv) -> dict:
    """--processes N: N rounds of the four PROCESSES, each timing one side, then medians."""
    flags = list(argv or sys.argv[1:])
    medians = {}
    collected = {label: [] for label, _, _ in PROCESSES}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(cfg.processes):
            for label, side, keep in PROCESSES:
                out = Path(scratch) / f"{round_}-{side}-{keep}"
                child = [sys.executable, __file__, *flags, "--processes", "0", "--side", side, "--out", str(out)]
                env = {**os.environ, "TINYHYDRA_KEEP_FREED_MEMORY": keep, "OPENBLAS_NUM_THREADS": str(cfg.threads)}
                subprocess.run(child, env=env, check=True, capture_output=True)
                collected[label].append(json.loads((out / "hydra_vs_torch.json").read_text())["seconds"])
    for label, rounds in collected.items():
        medians[label] = {direction: {int(length): {name: common.median([r[direction][length][name] for r in rounds])
                                                     for name in rounds[0][direction][length]}
                                      for length in rounds[0][direction]}
                          for direction in rounds[0]}
    print_ratios("tinyhydra (freed memory kept, as imported) against PyTorch at its defaults",
                 medians["tinyhydra"], medians["torch at its defaults"])
    print_ratios("both keeping freed memory", medians["tinyhydra"], medians["torch, memory kept"])
    print_ratios("both at glibc's defaults", medians["tinyhydra, memory given back"],
                 medians["torch at its defaults"])
    return medians


def main(argv=None) -> dict:
    cfg, _, rng, out = common.setup(Config, argv, __doc__, "hydra_vs_torch")
    unknown = set(cfg.directions) - set(DIRECTIONS)
    if unknown:
        raise SystemExit(f"error: --directions {sorted(unknown)}: expected causal and/or bidirectional")
    import torch
    torch.set_num_threads(cfg.threads)
    results = {"config": vars(cfg), "environment": common.environment("cpu"), "torch": torch.__version__}
    if cfg.processes > 0:
        results["seconds_by_process"] = separate_processes(cfg, argv)
        common.write_json(results, out / "hydra_vs_torch_processes.json")
        return results
    results["seconds"] = time_sides(cfg, torch, rng)
    if cfg.side == "both":
        print_ratios("one process (both keep freed memory: tinyhydra is imported)", results["seconds"],
                     results["seconds"])
    common.write_json(results, out / "hydra_vs_torch.json")
    return results


if __name__ == "__main__":
    common.run(main)
