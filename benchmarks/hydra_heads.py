"""Multi-head cosine linear attention against its head count H: forward + backward time.

``F.hydra_attention(q, k, v, num_heads=H)`` at the ML-1M models' attention shape (B 128,
L 200, D 50, float32, a key mask with 30% padding), for every H dividing 50. H = 50 = D is
Hydra's elementwise form (O(L D)); H < D runs heads of D/H features through
tinyhydra.attention.scan.linear_product (O(L D^2 / H) bidirectional, chunks of 16 positions causal).
Median of ``--repeats`` after one warm-up; a text table and a JSON record go to ``--out``.

    python benchmarks/hydra_heads.py --threads 1 --out results     # results/hydra_heads_cpu.txt
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import common  # benchmarks/common.py: this script's folder is on sys.path

from tinyhydra import Tensor
from tinyhydra import functional as F
from tinyhydra.engine import backend

HEADS = [1, 2, 5, 10, 25, 50]
FORMS = {"causal": (True, "global"), "bidirectional": (False, "global"),
         "causal per_head": (True, "per_head")}


@dataclass
class Config:
    device: str = field(default="cpu", metadata={"help": "cpu or gpu (CuPy)"})
    repeats: int = field(default=7, metadata={"help": "timed runs per case (median reported)"})
    threads: int = field(default=0, metadata={"help": "BLAS threads (0 = the default)"})
    quick: bool = field(default=False, metadata={"help": "smoke run: a small shape, 1 repeat"})
    seed: int = 0
    out: str = field(default="", metadata={"help": common.OUT_HELP})


def forward_backward(arrays, cotangent, key_mask, num_heads, causal, normalize):
    """One forward and backward of the op (the timed unit)."""
    q, k, v = (Tensor(a, requires_grad=True) for a in arrays)
    out = F.hydra_attention(q, k, v, causal=causal, key_mask=key_mask, num_heads=num_heads,
                            normalize=normalize)
    out.backward(cotangent)


def main(argv=None) -> dict:
    cfg, xp, rng, out = common.setup(Config, argv, __doc__, "hydra_heads")
    batch, length, dim = (4, 40, 10) if cfg.quick else (128, 200, 50)
    heads = [h for h in HEADS if dim % h == 0]
    repeats = 1 if cfg.quick else cfg.repeats
    arrays = [backend.to_device(rng.standard_normal((batch, length, dim)).astype("float32"), cfg.device)
              for _ in range(3)]
    cotangent = backend.to_device(rng.standard_normal((batch, length, dim)).astype("float32"), cfg.device)
    key_mask = backend.to_device(rng.random((batch, length)) > 0.3, cfg.device)
    lines = [f"hydra_heads: {cfg.device}, float32, (B, L, D) = ({batch}, {length}, {dim}), "
             f"forward + backward, median of {repeats} (ms)",
             f"{'H':>4}{'D/H':>5}" + "".join(f"{name:>18}" for name in FORMS)]
    rows = []
    for num_heads in heads:
        ms = {}
        for name, (causal, normalize) in FORMS.items():
            def run(num_heads=num_heads, causal=causal, normalize=normalize):
                forward_backward(arrays, cotangent, key_mask, num_heads, causal, normalize)
            ms[name] = 1e3 * common.median(common.time_runs(run, repeats=repeats, warmup=1, xp=xp))
        rows.append({"num_heads": num_heads, "head_dim": dim // num_heads, "ms": ms})
        lines.append(f"{num_heads:>4}{dim // num_heads:>5}" + "".join(f"{ms[n]:>18.1f}" for n in FORMS))
    lines.append(f"H = {dim} global is Hydra's elementwise form; per_head at H = D is phi(x) = sign(x).")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    results = {"benchmark": "hydra_heads", "config": asdict(cfg),
               "environment": common.environment(cfg.device), "shape": [batch, length, dim], "rows": rows}
    common.write_json(results, out / f"hydra_heads_{cfg.device}.json")
    (out / f"hydra_heads_{cfg.device}.txt").write_text(text)
    print(f"wrote {out / f'hydra_heads_{cfg.device}.txt'}")
    return results


if __name__ == "__main__":
    common.run(main)
