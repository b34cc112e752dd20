"""The head-count figure, the length sweep (ML-1M, 30 epochs, causal recipe) and the
long-budget pair (up to 300 epochs), read from the finished rows of ``scripts/decay_grid.sh``:
Markdown tables and one figure each.

    python scripts/sweeps.py heads      # H against test full NDCG@10 and step cost, both kernels
    python scripts/sweeps.py lengths    # L against quality and step cost; slope of log cost on log L
    python scripts/sweeps.py pair       # SASRec against DecayedHydraRecUni, and the 0.19 mark

Rows: ``sasrec-e30-h<H>`` (softmax, H heads of D/H features; H = 1 is ``sasrec-e30``),
``hydrarec-uni-e30-h<H>`` (cosine linear attention; H = D = 50 is ``hydrarec-uni-e30``, Hydra),
``<model>-len<L>`` (L = 200 is ``<model>-e30``). A row that has not finished is left out
and named. "s/epoch (as trained)" is what each run took (validation excluded), two runs
sharing the machine's two cores, on the engine of the day it was trained: rows trained at
different times are not comparable by it. Costs are therefore read from ``scripts/step_costs.sh``
(``results/head_costs/H<H>/``, ``results/length_costs/L<L>/``): benchmarks/train_step.py's
seconds per training step (this process's CPU clock, one thread, B = 128: time spent waiting
for a core is left out, time spent waiting for memory shared with other runs is not) and the
peak extra memory of one step; the figures plot those, and the length table fits the slope of
each against L.
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
# the attention kind of each series in benchmarks/train_step.py's results (scripts/step_costs.sh)
LENGTH_BENCHMARK_KIND = {"sasrec": "softmax", "hydrarec-uni": "hydra", "hydrarec-uni-decay": "decayed-hydra"}
HEAD_BENCHMARK_KIND = {"softmax": "softmax", "cosine": "hydra"}  # per-head norm: not benchmarked
METRIC = "full/NDCG@10"
# the long-budget pair (causal recipe, same budget), then the same pair with a cosine learning-rate schedule,
# stopped early and run to the end
PAIRS = (("sasrec-e300", "hydrarec-uni-decay-e300"), ("sasrec-e300-cos", "hydrarec-uni-decay-e300-cos"),
         ("sasrec-e300-cos-full", "hydrarec-uni-decay-e300-cos-full"))  # the last: no early stopping
PAIR = tuple(row for pair in PAIRS for row in pair)
TARGET = 0.19  # test full NDCG@10 above every published full-ranking number on this split


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


def step_costs(path: Path) -> dict[str, tuple[float, float]]:
    """attention kind -> (seconds per step, peak GiB) in the benchmark file ``path`` ({} if none)."""
    if not path.exists():
        return {}
    bench = json.loads(path.read_text())
    return {kind: (timing["seconds_per_step"], bench["memory"][kind]["peak_bytes"] / 2**30)
            for kind, timing in bench["models"].items()}


def cost_cells(costs: tuple[float, float] | None) -> str:
    return f"{costs[0]:.3f} | {costs[1]:.2f}" if costs else "- | -"


def heads_table(results: Path) -> tuple[list[str], list]:
    lines = ["| H | D/H | kernel | full NDCG@10 | full HR@10 | s/epoch (as trained) | s/step (benchmark) | "
             "peak GiB | row |", "| --- " * 9 + "|"]
    quality, missing = {kernel: [] for kernel in KERNELS}, []
    steps, memory = {kernel: [] for kernel in KERNELS}, {kernel: [] for kernel in KERNELS}
    benchmarks = {heads: step_costs(results / "head_costs" / f"H{heads}" / "train_step.json") for heads in HEADS}
    for heads in HEADS:
        for kernel in KERNELS:
            row = head_row(kernel, heads)
            if row is None:
                continue
            costs = benchmarks[heads].get(HEAD_BENCHMARK_KIND.get(kernel, ""))
            if costs:
                steps[kernel].append((heads, costs[0]))
                memory[kernel].append((heads, costs[1]))
            m = load(results, row)
            if m is None:
                missing.append(row)
            else:
                quality[kernel].append((heads, m["test"][METRIC]))
            if m or costs:
                trained = (f"{m['test'][METRIC]:.4f} | {m['test']['full/HR@10']:.4f} | {m['seconds_per_epoch']:.1f}"
                           if m else "- | - | -")
                link = f"[{row}](../results/decay-grid-{row}.json)" if m else "not trained yet"
                lines.append(f"| {heads} | {DIM // heads} | {kernel} | {trained} | {cost_cells(costs)} | {link} |")
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(dict.fromkeys(missing)) + "."]
    return lines, [("test full NDCG@10", quality), ("s/step (benchmark, CPU clock)", steps),
                   ("peak memory of a step (GiB)", memory)]


def slope_line(what: str, series: dict) -> list[str]:
    slopes = [f"{model} {fitted_slope(*zip(*pts)):.2f}" for model, pts in series.items() if len(pts) >= 2]
    return ["", f"Fitted slope of log({what}) on log(L): " + ", ".join(slopes) + "."] if slopes else []


def lengths_table(results: Path) -> tuple[list[str], list]:
    lines = ["| model | L | full NDCG@10 | s/epoch (as trained) | s/step (benchmark) | peak GiB | row |",
             "| --- " * 7 + "|"]
    quality, missing = {model: [] for model in LENGTH_MODELS}, []
    steps, memory = {model: [] for model in LENGTH_MODELS}, {model: [] for model in LENGTH_MODELS}
    benchmarks = {length: step_costs(results / "length_costs" / f"L{length}" / "train_step.json")
                  for length in LENGTHS}
    for model in LENGTH_MODELS:
        for length in LENGTHS:
            row = length_row(model, length)
            m = load(results, row)
            costs = benchmarks[length].get(LENGTH_BENCHMARK_KIND[model])
            if costs:
                steps[model].append((length, costs[0]))
                memory[model].append((length, costs[1]))
            if m is None:
                missing.append(row)
            else:
                quality[model].append((length, m["test"][METRIC]))
            if m or costs:
                trained = f"{m['test'][METRIC]:.4f} | {m['seconds_per_epoch']:.1f}" if m else "- | -"
                link = f"[{row}](../results/decay-grid-{row}.json)" if m else "not trained yet"
                lines.append(f"| {model} | {length} | {trained} | {cost_cells(costs)} | {link} |")
    lines += slope_line("s/step", steps) + slope_line("peak memory", memory)
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(dict.fromkeys(missing)) + "."]
    return lines, [("test full NDCG@10", quality), ("s/step (benchmark, CPU clock)", steps),
                   ("peak memory of a step (GiB)", memory)]


def pair_table(results: Path) -> tuple[list[str], list]:
    """The long-budget rows: where each stopped, its best test numbers against ``TARGET``, and
    the panels of validation full NDCG@10 and training loss against the epoch."""
    lines = ["| row | epochs run | best epoch | stopped by | valid full NDCG@10 | test full NDCG@10 | "
             f"test full HR@10 | test - {TARGET} | hours of training |", "| --- " * 9 + "|"]
    valid, loss, tests, missing = {}, {}, {}, []
    for row in PAIR:
        m = load(results, row)
        if m is None:
            missing.append(row)
            continue
        test = tests[row] = m["test"][METRIC]
        lines.append(f"| [{row}](../results/decay-grid-{row}.json) | {m['epochs_run']} | {m['best_epoch']} | "
                     f"{m['stop_reason']} | {m['valid'][METRIC]:.4f} | {test:.4f} | {m['test']['full/HR@10']:.4f} "
                     f"| {test - TARGET:+.4f} | {m['train_seconds'] / 3600:.1f} |")
        history = m.get("history", [])
        valid[row] = [(h["epoch"], h["valid"][METRIC]) for h in history if METRIC in h.get("valid", {})]
        loss[row] = [(h["epoch"], h["loss"]) for h in history]
    lines += pair_verdicts(tests)
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(missing) + "."]
    return lines, [("validation full NDCG@10", valid), ("training loss", loss)]


def pair_verdicts(tests: dict[str, float]) -> list[str]:
    """What the finished rows say, from {row: test full NDCG@10}: each O(L·D) row against its
    softmax twin, and the best test number against ``TARGET`` (computed, so a notebook on other
    results prints their verdict)."""
    if not tests:
        return []
    lines = [""]
    for softmax, linear in PAIRS:
        if softmax in tests and linear in tests:
            gain = tests[linear] - tests[softmax]
            lines.append(f"{linear} against {softmax}: test full NDCG@10 {tests[linear]:.4f} against "
                         f"{tests[softmax]:.4f} ({gain:+.4f}, {gain / tests[softmax]:+.1%}).")
    best = max(tests, key=tests.get)
    gap = tests[best] - TARGET
    lines.append(f"Best test full NDCG@10: {tests[best]:.4f} ({best}): "
                 + (f"{TARGET} reached (+{gap:.4f})." if gap >= 0 else
                    f"{TARGET} missed by {-gap:.4f} ({-gap / TARGET:.1%})."))
    return lines


# sweep -> (its table, the x axis of its figure, that axis' scale)
SWEEPS = {"heads": (heads_table, "heads H (D = 50)", "log"),
          "lengths": (lengths_table, "sequence length L", "log"),
          "pair": (pair_table, "epoch", "linear")}


def figure(sweep: str, panels: list):
    """The figure of ``sweep``: one panel per (y label, {name: [(x, y), ...]}) that has points.
    Quality and loss on a linear y axis, times and memory on a log one (slopes read as powers).
    None when no row has finished."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
    _, xlabel, xscale = SWEEPS[sweep]
    panels = [panel for panel in panels if any(panel[1].values())]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.4), squeeze=False)
    for axis, (label, series) in zip(axes[0], panels):
        for name, pts in series.items():
            if pts:
                axis.plot(*zip(*pts), "o-" if xscale == "log" else "-", label=name)
        if sweep == "pair" and "NDCG" in label:
            axis.axhline(TARGET, color="grey", linestyle=":", label=f"{TARGET} (test)")
        linear = "NDCG" in label or "loss" in label
        axis.set(xlabel=xlabel, ylabel=label, xscale=xscale, yscale="linear" if linear else "log")
        if xscale == "log":  # ticks at the measured points, written 0.5, 2, 50 (not 5x10^-1, ...)
            axis.set_xticks(sorted({x for pts in series.values() for x, _ in pts}))
        if not linear:
            axis.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        for ticks in (axis.xaxis, axis.yaxis):
            ticks.set_major_formatter(FormatStrFormatter("%g"))
            ticks.set_minor_formatter(NullFormatter())
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot(sweep: str, panels: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt
    fig = figure(sweep, panels)
    if fig is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", choices=list(SWEEPS))
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of decay-grid-*.json")
    parser.add_argument("--figure", type=Path, help="PNG to write (default docs/<sweep>_sweep.png; '' none)")
    args = parser.parse_args(argv)
    lines, panels = SWEEPS[args.sweep][0](args.results)
    path = ROOT / "docs" / f"{args.sweep}_sweep.png" if args.figure is None else args.figure
    if str(path) not in ("", "."):
        plot(args.sweep, panels, path)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
