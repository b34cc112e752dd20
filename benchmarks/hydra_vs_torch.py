"""Plain and decayed Hydra attention: tinyhydra against the same maths in PyTorch eager.

One forward AND backward of the attention op alone, causal, float32 q, k, v of shape
(B, L, D) = (2, L, 64), a fixed random cotangent, one thread for both libraries
(set OPENBLAS_NUM_THREADS=1 in the environment: NumPy reads it when it loads). The
PyTorch side is written with the same algorithm (cosine feature map, cumsum; for the
decayed form the same chunked decayed prefix sum, chunk 16) and differentiated by
torch.autograd. Lengths are the outer loop and the four runs the inner one, so drift in
the machine's load hits all alike; each figure is the median of ``--repeats`` runs.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hydra_vs_torch.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/hydra_vs_torch.py --lengths 512 4096 --repeats 3

Needs PyTorch (``pip install torch``); prints a table and writes hydra_vs_torch.json to --out.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

from tinyhydra import functional as F  # noqa: E402
from tinyhydra.decayed_hydra import CHUNK  # noqa: E402
from tinyhydra.tensor import Tensor  # noqa: E402


@dataclass
class Config:
    lengths: list = field(default_factory=lambda: [512, 1024, 2048, 4096, 8192, 16384],
                          metadata={"help": "sequence lengths L"})
    batch: int = field(default=2, metadata={"help": "B"})
    dim: int = field(default=64, metadata={"help": "D"})
    repeats: int = field(default=7, metadata={"help": "timed runs per point (median reported)"})
    warmup: int = field(default=2, metadata={"help": "untimed runs first"})
    seed: int = 0
    device: str = "cpu"
    out: str = field(default=str(common.DEFAULT_OUT), metadata={"help": "output folder"})


# ------------------------------------------------------------------ the PyTorch side
def torch_decayed_cumsum(torch, x, decay, chunk=CHUNK):
    """y_i = sum_{t<=i} a^(i-t) x_t along dim -2 for a (D,): chunk matrices, states carried."""
    length, dim = x.shape[-2:]
    lag = torch.arange(min(length, chunk))
    lag = lag[:, None] - lag[None, :]
    weight = torch.where(lag >= 0, decay[:, None, None] ** lag.clamp(min=0), 0.0)  # (D, C, C)
    if length <= chunk:
        return torch.einsum("dij,...jd->...id", weight, x)
    count = -(-length // chunk)
    x = torch.nn.functional.pad(x, (0, 0, 0, count * chunk - length))
    inner = torch.einsum("dij,...njd->...nid", weight, x.reshape(*x.shape[:-2], count, chunk, dim))
    totals = torch_decayed_cumsum(torch, inner[..., -1, :], decay**chunk, chunk)  # (..., n, D)
    carried = torch.nn.functional.pad(totals[..., :-1, :], (0, 0, 1, 0))
    steps = decay[None, :] ** torch.arange(1, chunk + 1)[:, None]  # (C, D)
    y = inner + steps * carried[..., :, None, :]
    return y.reshape(x.shape)[..., :length, :]


def torch_hydra(torch, q, k, v, decay=None):
    """Causal (decayed) Hydra: phi(q) * cumsum(phi(k) * v), autograd for the backward."""
    normalize = torch.nn.functional.normalize
    u = normalize(k, dim=-1, eps=1e-12) * v  # (B, L, D)
    kv = u.cumsum(-2) if decay is None else torch_decayed_cumsum(torch, u, decay)
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
    cfg, _, rng, out = common.setup(Config, argv, __doc__)
    import torch
    torch.set_num_threads(1)
    decay = np.geomspace(0.5, 0.999, cfg.dim).astype(np.float32)
    results = {"config": vars(cfg), "environment": common.environment("cpu"),
               "torch": torch.__version__, "seconds": {}}
    print(f"{'L':>6}" + "".join(f"{name:>17}" for name in runs(torch, [], None, decay))
          + f"{'plain/torch':>13}{'decayed/torch':>15}{'decayed/plain':>15}")
    for length in cfg.lengths:
        arrays = [rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32)
                  for _ in range(3)]
        cotangent = rng.standard_normal((cfg.batch, length, cfg.dim)).astype(np.float32)
        seconds = {name: common.median(common.time_runs(run, cfg.repeats, cfg.warmup))
                   for name, run in runs(torch, arrays, cotangent, decay).items()}
        results["seconds"][length] = seconds
        print(f"{length:>6}" + "".join(f"{1e3 * s:>14.2f} ms" for s in seconds.values())
              + f"{seconds['hydra'] / seconds['hydra (torch)']:>13.2f}"
              + f"{seconds['decayed'] / seconds['decayed (torch)']:>15.2f}"
              + f"{seconds['decayed'] / seconds['hydra']:>15.2f}", flush=True)
    common.write_json(results, out / "hydra_vs_torch.json")
    return results


if __name__ == "__main__":
    main()
