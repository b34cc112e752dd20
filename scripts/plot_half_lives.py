"""Plot the learned half-lives of a decayed-Hydra run: one panel per layer, features sorted.

    python scripts/plot_half_lives.py runs/causal/hydrarec-uni-decay [more run folders] --out docs/half_lives.png

Reads each run's best.npz (the weights validation chose; checkpoint.npz if there is no
best.npz yet), turns every ``decay_logit`` into half-lives log(1/2) / log(sigmoid(logit)),
and draws them against the feature rank on a log axis, with the initial spread (1 to
max_len, log-uniform) dashed for comparison. Prints the median half-life per layer.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tinyhydra.attention.decayed_hydra import half_life, learned_half_lives
from tinyhydra.engine import checkpoint
from tinyhydra.nn import half_life_decays


def run_weights(folder: Path) -> dict:
    best = folder / "best.npz"
    return checkpoint.load(best) if best.exists() else checkpoint.load(folder / "checkpoint.npz")["model"]


def max_len_of(folder: Path) -> int:
    """The run's --max-len (what the initial half-lives spread up to), from its checkpoint."""
    path = folder / "checkpoint.npz"
    config = checkpoint.load(path)["state"].get("config") if path.exists() else None
    return int((config or {}).get("max_len", 200))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of *-decay models")
    parser.add_argument("--out", type=Path, default=Path("docs/half_lives.png"), help="the PNG to write")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = {folder: learned_half_lives(run_weights(folder)) for folder in args.runs}
    layers = max(len(v) for v in found.values())
    fig, axes = plt.subplots(1, layers, figsize=(5 * layers, 3.6), squeeze=False, sharey=True)
    for folder, half_lives in found.items():
        for ax, (name, values) in zip(axes[0], half_lives.items()):
            rows = np.atleast_2d(values)
            for direction, row in zip(("earlier", "later"), rows):
                label = folder.name + (f" ({direction})" if len(rows) == 2 else "")
                ax.plot(np.sort(row), marker=".", label=label)
                print(f"{label:>40} {name}: median half-life {np.median(row):.1f} positions, "
                      f"range {row.min():.2f} .. {row.max():.1f}")
            ax.set_title(name.replace(".decay_logit", ""))
    dim = np.atleast_2d(next(iter(next(iter(found.values())).values()))).shape[1]
    initial = half_life(half_life_decays(dim, max_len_of(args.runs[0])))
    for ax in axes[0]:
        ax.plot(initial, "k--", linewidth=1, label="initial")
        ax.set_yscale("log")
        ax.set_xlabel("feature (sorted by half-life)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("half-life (positions)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return found


if __name__ == "__main__":
    main()
