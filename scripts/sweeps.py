"""The head-count figure and the length sweep of ML-1M (30 epochs, causal recipe), read from
the finished rows of ``scripts/decay_grid.sh``: Markdown tables and one figure each.

    python scripts/sweeps.py heads      # H against test full NDCG@10 and s/epoch, both kernels
    python scripts/sweeps.py lengths    # L against quality, s/epoch; slope of log time on log L

Rows: ``sasrec-e30-h<H>`` (softmax, H heads of D/H features; H = 1 is ``sasrec-e30``),
``hydrarec-uni-e30-h<H>`` (cosine linear attention; H = D = 50 is ``hydrarec-uni-e30``, Hydra),
``<model>-len<L>`` (L = 200 is ``<model>-e30``). A row that has not finished is left out
and named. Seconds per epoch come from the training runs (validation excluded) on this
machine, two runs sharing its two cores; they are what the runs took, not a benchmark.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM = 50
HEADS = (1, 2, 5, 10, 25, 50)
LENGTHS = (50, 100, 200, 400, 800)
KERNELS = {"softmax": "sasrec", "cosine": "hydrarec-uni"}  # kernel -> model of its rows
LENGTH_MODELS = ("sasrec", "hydrarec-uni", "hydrarec-uni-decay")
METRIC = "full/NDCG@10"


def head_row(kernel: str, heads: int) -> str:
    model = KERNELS[kernel]
    default = 1 if kernel == "softmax" else DIM  # the model's own head count: the plain e30 row
    return f"{model}-e30" if heads == default else f"{model}-e30-h{heads}"


def length_row(model: str, length: int) -> str:
    return f"{model}-e30" if length == 200 else f"{model}-len{length}"


def load(results: Path, row: str) -> dict | None:
    path = results / f"decay-grid-{row}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fitted_slope(xs, ys) -> float:
    """Least-squares slope of log y on log x: time ~ L^slope (1 linear, 2 quadratic)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def heads_table(results: Path) -> tuple[list[str], dict]:
    lines = ["| H | D/H | kernel | full NDCG@10 | full HR@10 | s/epoch | row |", "| --- " * 7 + "|"]
    points, missing = {kernel: [] for kernel in KERNELS}, []
    for heads in HEADS:
        for kernel in KERNELS:
            row = head_row(kernel, heads)
            m = load(results, row)
            if m is None:
                missing.append(row)
                continue
            points[kernel].append((heads, m["test"][METRIC], m["seconds_per_epoch"]))
            lines.append(f"| {heads} | {DIM // heads} | {kernel} | {m['test'][METRIC]:.4f} | "
                         f"{m['test']['full/HR@10']:.4f} | {m['seconds_per_epoch']:.1f} | "
                         f"[{row}](../results/decay-grid-{row}.json) |")
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(missing) + "."]
    return lines, points


def lengths_table(results: Path) -> tuple[list[str], dict]:
    lines = ["| model | L | full NDCG@10 | s/epoch | row |", "| --- " * 5 + "|"]
    points, missing = {model: [] for model in LENGTH_MODELS}, []
    for model in LENGTH_MODELS:
        for length in LENGTHS:
            row = length_row(model, length)
            m = load(results, row)
            if m is None:
                missing.append(row)
                continue
            points[model].append((length, m["test"][METRIC], m["seconds_per_epoch"]))
            lines.append(f"| {model} | {length} | {m['test'][METRIC]:.4f} | {m['seconds_per_epoch']:.1f} | "
                         f"[{row}](../results/decay-grid-{row}.json) |")
    slopes = [f"{model} {fitted_slope(*zip(*[(p[0], p[2]) for p in pts])):.2f}"
              for model, pts in points.items() if len(pts) >= 2]
    if slopes:
        lines += ["", "Fitted slope of log(s/epoch) on log(L): " + ", ".join(slopes) + "."]
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(missing) + "."]
    return lines, points


def plot(points: dict, xlabel: str, path: Path, logx: bool = True) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (quality, time) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, pts in points.items():
        if not pts:
            continue
        xs, ndcg, seconds = zip(*pts)
        quality.plot(xs, ndcg, "o-", label=name)
        time.plot(xs, seconds, "o-", label=name)
    for axis, label in ((quality, "test full NDCG@10"), (time, "s/epoch (training)")):
        axis.set_xlabel(xlabel)
        axis.set_ylabel(label)
        if logx:
            axis.set_xscale("log")
        axis.grid(alpha=0.3)
    time.set_yscale("log")
    quality.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", choices=["heads", "lengths"])
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of decay-grid-*.json")
    parser.add_argument("--figure", type=Path, help="PNG to write (default docs/<sweep>_sweep.png; '' none)")
    args = parser.parse_args(argv)
    lines, points = (heads_table if args.sweep == "heads" else lengths_table)(args.results)
    figure = ROOT / "docs" / f"{args.sweep}_sweep.png" if args.figure is None else args.figure
    if str(figure) not in ("", ".") and any(points.values()):
        plot(points, "heads H (D = 50)" if args.sweep == "heads" else "sequence length L", figure)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
