"""Plain and decayed Hydra attention: tinyhydra against the same maths in PyTorch eager.

One forward AND backward of the attention op alone, causal, float32 q, k, v of shape
(B, L, D) = (2, L, 64), a fixed random cotangent, ``--threads`` for both libraries. The
PyTorch side computes the same maths (cosine feature map; torch.cumsum for plain Hydra;
for the decayed form the two-level prefix sum of tinyhydra.attention.scan, as PyTorch has no
decayed cumsum) and is differentiated by torch.autograd. Each of ``--repeats`` rounds
runs the four once, one after the other, so drift in the machine's load hits all alike;
each figure is the median over the rounds.

    python benchmarks/hydra_vs_torch.py --threads 1
    python benchmarks/hydra_vs_torch.py --threads 1 --lengths 512 4096 --repeats 3

Needs PyTorch (``pip install torch``); prints a table and writes hydra_vs_torch.json to --out
(default results/hydra_vs_torch_<device>/).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import common  # benchmarks/common.py: this script's folder is on sys.path
import numpy as np

from tinyhydra import functional as F
from tinyhydra.attention.scan import DIRECT
from tinyhydra.engine.tensor import Tensor


@dataclass
class Config:
    lengths: list[int] = field(default_factory=lambda: [512, 1024, 2048, 4096, 8192, 16384],
                          metadata={"help": "sequence lengths L"})
    batch: int = field(default=2, metadata={"help": "B"})
    dim: int = field(default=64, metadata={"help": "D"})
    repeats: int = field(default=7, metadata={"help": "timed runs per point (median reported)"})
    warmup: int = field(default=2, metadata={"help": "untimed runs first"})
    threads: int = field(default=1, metadata={"help": "BLAS and PyTorch threads"})
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


def torch_hydra(torch, q, k, v, decay=None):
    """Causal (decayed) Hydra: phi(q) * cumsum(phi(k) * v), autograd for the backward."""
    normalize = torch.nn.functional.normalize
    u = normalize(k, dim=-1, eps=1e-12) * v  # (B, L, D)
    kv = u.cumsum(-2) if decay is None else torch_prefix_sum(torch, u, decay)
    return normalize(q, dim=-1, eps=1e-12) * kv


# ------------------------------------------------------------------------- the runs
def runs(torch, arrays, cotangent, decay):
    """name -> a callable doing one forward + backward."""
    def ours(decayed):
        def run():
            tensors = [Tensor(a, requires_grad=True) for a in arrays]
            extra = [Tensor(decay, requires_grad=True)] if decayed else []
            attention = F.decayed_hydra_attention if decayed else F.hydra_attention
            attention(*tensors, *extra, causal=True).backward(cotangent)
        return run

    def theirs(decayed):
        def run():
            tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
            extra = torch.tensor(decay, requires_grad=True) if decayed else None
            torch_hydra(torch, *tensors, extra).backward(torch.from_numpy(cotangent))
        return run

    return {"hydra": ours(False), "hydra (torch)": theirs(False),
            "decayed": ours(True), "decayed (torch)": theirs(True)}


def main(argv=None) -> dict:
    cfg, _, rng, out = common.setup(Config, argv, __doc__, "hydra_vs_torch")
    import torch
    torch.set_num_threads(cfg.threads)
    decay = np.geomspace(0.5, 0.999, cfg.dim).astype(np.float32)
    results = {"config": vars(cfg), "environment": common.environment("cpu"),
               "torch": torch.__version__, "seconds": {}}
    print(f"{'L':>6}" + "".join(f"{name:>17}" for name in runs(torch, [], None, decay))
          + f"{'plain/torch':>13}{'decayed/torch':>15}{'decayed/plain':>15}")
    for length in cfg.lengths:
        arrays = [rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32)
                  for _ in range(3)]
        cotangent = rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32)
        contestants = runs(torch, arrays, cotangent, decay)
        timed = {name: [] for name in contestants}
        for _ in range(cfg.repeats):  # one run of each per round: load drift hits all four alike
            for name, run in contestants.items():
                timed[name] += common.time_runs(run, 1, cfg.warmup if not timed[name] else 0)
        seconds = {name: common.median(values) for name, values in timed.items()}
        results["seconds"][length] = seconds
        print(f"{length:>6}" + "".join(f"{1e3 * s:>14.2f} ms" for s in seconds.values())
              + f"{seconds['hydra'] / seconds['hydra (torch)']:>13.2f}"
              + f"{seconds['decayed'] / seconds['decayed (torch)']:>15.2f}"
              + f"{seconds['decayed'] / seconds['hydra']:>15.2f}", flush=True)
    common.write_json(results, out / "hydra_vs_torch.json")
    return results


if __name__ == "__main__":
    common.run(main)
