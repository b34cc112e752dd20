"""The head-count figure and the length sweep of ML-1M (30 epochs, causal recipe), read from
the finished rows of ``scripts/decay_grid.sh``: Markdown tables and one figure each.

    python scripts/sweeps.py heads      # H against test full NDCG@10 and s/epoch, both kernels
    python scripts/sweeps.py lengths    # L against quality, s/epoch; slope of log time on log L

Rows: ``sasrec-e30-h<H>`` (softmax, H heads of D/H features; H = 1 is ``sasrec-e30``),
``hydrarec-uni-e30-h<H>`` (cosine linear attention; H = D = 50 is ``hydrarec-uni-e30``, Hydra),
``<model>-len<L>`` (L = 200 is ``<model>-e30``). A row that has not finished is left out
and named. Seconds per epoch come from the training runs (validation excluded) on this
machine, two runs sharing its two cores; they are what the runs took, not a benchmark.
The length table adds, where ``results/length_costs/L<L>/train_step.json`` exists, the
benchmark's seconds per training step (this process's CPU clock, one thread, B = 128) and the
peak extra memory of one step, which a busy machine does not distort, and fits both slopes.
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
KERNELS = ("softmax", "cosine", "cosine per-head norm")
LENGTH_MODELS = ("sasrec", "hydrarec-uni", "hydrarec-uni-decay")
BENCHMARK_KIND = {"sasrec": "softmax", "hydrarec-uni": "hydra", "hydrarec-uni-decay": "decayed-hydra"}
METRIC = "full/NDCG@10"


def head_row(kernel: str, heads: int) -> str | None:
    """The grid row of ``kernel`` with ``heads`` heads; None where there is none (per-head
    normalisation at H = D is sign(x), refused). A model's own head count is its plain e30 row;
    per-head and global normalisation are one at H = 1."""
    if kernel == "softmax":
        return "sasrec-e30" if heads == 1 else f"sasrec-e30-h{heads}"
    if heads == DIM:
        return "hydrarec-uni-e30" if kernel == "cosine" else None
    if heads == 1 or kernel == "cosine":
        return f"hydrarec-uni-e30-h{heads}"
    return f"hydrarec-uni-e30-h{heads}-perhead"


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
            if row is None:
                continue
            m = load(results, row)
            if m is None:
                missing.append(row)
                continue
            points[kernel].append((heads, m["test"][METRIC], m["seconds_per_epoch"]))
            lines.append(f"| {heads} | {DIM // heads} | {kernel} | {m['test'][METRIC]:.4f} | "
                         f"{m['test']['full/HR@10']:.4f} | {m['seconds_per_epoch']:.1f} | "
                         f"[{row}](../results/decay-grid-{row}.json) |")
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(dict.fromkeys(missing)) + "."]
    return lines, quality_and_time(points)


def step_costs(results: Path, model: str, length: int) -> tuple[float, float] | None:
    """(seconds per step, peak GiB) of the benchmark at ``length``, or None."""
    path = results / "length_costs" / f"L{length}" / "train_step.json"
    if not path.exists():
        return None
    bench, kind = json.loads(path.read_text()), BENCHMARK_KIND[model]
    return bench["models"][kind]["seconds_per_step"], bench["memory"][kind]["peak_bytes"] / 2**30


def slope_line(what: str, series: dict) -> list[str]:
    slopes = [f"{model} {fitted_slope(*zip(*pts)):.2f}" for model, pts in series.items() if len(pts) >= 2]
    return ["", f"Fitted slope of log({what}) on log(L): " + ", ".join(slopes) + "."] if slopes else []


def lengths_table(results: Path) -> tuple[list[str], dict]:
    lines = ["| model | L | full NDCG@10 | s/epoch (training) | s/step (benchmark) | peak GiB | row |",
             "| --- " * 7 + "|"]
    points, missing = {model: [] for model in LENGTH_MODELS}, []
    steps, memory = {model: [] for model in LENGTH_MODELS}, {model: [] for model in LENGTH_MODELS}
    for model in LENGTH_MODELS:
        for length in LENGTHS:
            row = length_row(model, length)
            m, costs = load(results, row), step_costs(results, model, length)
            if costs:
                steps[model].append((length, costs[0]))
                memory[model].append((length, costs[1]))
            if m is None:
                missing.append(row)
            else:
                points[model].append((length, m["test"][METRIC], m["seconds_per_epoch"]))
            if m or costs:
                quality = f"{m['test'][METRIC]:.4f} | {m['seconds_per_epoch']:.1f}" if m else "- | -"
                cost = f"{costs[0]:.3f} | {costs[1]:.2f}" if costs else "- | -"
                link = f"[{row}](../results/decay-grid-{row}.json)" if m else "not trained yet"
                lines.append(f"| {model} | {length} | {quality} | {cost} | {link} |")
    lines += slope_line("s/epoch", {model: [(p[0], p[2]) for p in pts] for model, pts in points.items()})
    lines += slope_line("s/step", steps) + slope_line("peak memory", memory)
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(dict.fromkeys(missing)) + "."]
    return lines, quality_and_time(points) + [("s/step (benchmark, CPU clock)", steps),
                                              ("peak memory of a step (GiB)", memory)]


def quality_and_time(points: dict) -> list:
    """The two panels of the training rows: (label, {name: [(x, y), ...]})."""
    return [("test full NDCG@10", {k: [(p[0], p[1]) for p in pts] for k, pts in points.items()}),
            ("s/epoch (training)", {k: [(p[0], p[2]) for p in pts] for k, pts in points.items()})]


def plot(panels: list, xlabel: str, path: Path) -> None:
    """One panel per (y label, {name: [(x, y), ...]}) that has points; log x, log y but for quality."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [panel for panel in panels if any(panel[1].values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.4), squeeze=False)
    for axis, (label, series) in zip(axes[0], panels):
        for name, pts in series.items():
            if pts:
                axis.plot(*zip(*pts), "o-", label=name)
        axis.set(xlabel=xlabel, ylabel=label, xscale="log", yscale="linear" if "NDCG" in label else "log")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", choices=["heads", "lengths"])
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of decay-grid-*.json")
    parser.add_argument("--figure", type=Path, help="PNG to write (default docs/<sweep>_sweep.png; '' none)")
    args = parser.parse_args(argv)
    lines, panels = (heads_table if args.sweep == "heads" else lengths_table)(args.results)
    figure = ROOT / "docs" / f"{args.sweep}_sweep.png" if args.figure is None else args.figure
    if str(figure) not in ("", ".") and any(any(series.values()) for _, series in panels):
        plot(panels, "heads H (D = 50)" if args.sweep == "heads" else "sequence length L", figure)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
