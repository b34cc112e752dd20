"""The two level-1 forms of tinyhydra.attention.scan.prefix_sum, timed on one device.

``method="loop"`` runs C - 1 vectorised recurrence steps inside every chunk (the fewest
operations, NumPy's default); ``method="matmul"`` one product per chunk of 64 with the
decay matrix (C times the arithmetic in a few large kernels, CuPy's default). Both are
timed plain (a = 1) and decayed (a per-feature decay in [0.5, 0.999]), float32, at the
shape of the ML-1M models' attention (B 128, L 200, D 50) and at two long sequences.
Median of ``--repeats`` after one warm-up; the forms must agree to float32 round-off,
which is checked on every shape before timing.

    python benchmarks/scan_forms.py --threads 1            # CPU, one BLAS thread
    python benchmarks/scan_forms.py --device gpu           # the GPU's choice, measured
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import common  # benchmarks/common.py: this script's folder is on sys.path

from tinyhydra.attention.scan import METHODS, prefix_sum
from tinyhydra.engine import backend

SHAPES = [(128, 200, 50), (2, 4096, 64), (2, 16384, 64)]  # (B, L, D)


@dataclass
class Config:
    device: str = field(default="cpu", metadata={"help": "cpu or gpu (CuPy)"})
    repeats: int = field(default=7, metadata={"help": "timed runs per case (median reported)"})
    threads: int = field(default=0, metadata={"help": "BLAS threads (0 = the default)"})
    quick: bool = field(default=False, metadata={"help": "smoke run: small shapes, 1 repeat"})
    seed: int = 0
    out: str = field(default="", metadata={"help": common.OUT_HELP})


def main(argv=None) -> dict:
    cfg, xp, rng, out = common.setup(Config, argv, __doc__, "scan_forms")
    shapes = [(2, 70, 3), (1, 300, 4)] if cfg.quick else SHAPES
    repeats = 1 if cfg.quick else cfg.repeats
    print(f"scan_forms: {cfg.device}, float32, median of {repeats}")
    print(f"{'(B, L, D)':<18}{'decay':<9}" + "".join(f"{m + ' ms':>12}" for m in METHODS) + f"{'max diff':>11}")
    rows = []
    for shape in shapes:
        x = backend.to_device(rng.standard_normal(shape).astype("float32"), cfg.device)
        decays = {"plain": None,
                  "decayed": backend.to_device(rng.uniform(0.5, 0.999, shape[-1]).astype("float32"), cfg.device)}
        for name, decay in decays.items():
            outputs = {m: backend.as_numpy(prefix_sum(x, decay, m)) for m in METHODS}
            difference = float(abs(outputs["loop"] - outputs["matmul"]).max())
            scale = float(abs(outputs["loop"]).max())
            if not difference <= 1e-4 * max(1.0, scale):
                raise AssertionError(f"{shape} {name}: the forms differ by {difference} (scale {scale})")
            ms = {m: 1e3 * common.median(common.time_runs(lambda m=m, x=x, decay=decay: prefix_sum(x, decay, m),
                                                            repeats=repeats, warmup=1, xp=xp))
                  for m in METHODS}
            rows.append({"shape": shape, "decay": name, "ms": ms, "max_difference": difference})
            print(f"{str(shape):<18}{name:<9}" + "".join(f"{ms[m]:>12.3f}" for m in METHODS)
                  + f"{difference:>11.1e}")
    results = {"benchmark": "scan_forms", "config": asdict(cfg),
               "environment": common.environment(cfg.device), "rows": rows}
    path = common.write_json(results, out / "scan_forms.json")
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    common.run(main)
