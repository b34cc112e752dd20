"""The decayed-Hydra comparison as Markdown tables, read from the finished rows' metrics.

    python scripts/grid_table.py                   # CPU rows: test metrics, then validation every 10 epochs
    python scripts/grid_table.py --device gpu      # the GPU rows
    python scripts/grid_table.py --direction bidirectional --valid-every 10
    python scripts/grid_table.py --dataset beauty  # another data set's rows

Each finished row of ``scripts/decay_grid.sh DATASET`` leaves
``results/decay-grid[-gpu][-<dataset>]-<row>.json`` (the run's metrics.json; ML-1M rows have
no data set in their name). The tables in docs/results.md are this script's output, pasted;
a test regenerates every row line and fails when docs/results.md no longer holds it, so the
page cannot drift from the measurements.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from tinyhydra.rec.data import DATASETS
from tinyhydra.rec.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
# the order rows are shown in: baselines first, then the decayed models and their ablations
ORDER = ["sasrec", "hydrarec-uni", "hydrarec-uni-decay", "hydrarec-uni-decay-fixed", "hydrarec-uni-conv",
         "hydrarec-uni-decay-conv", "sasrec-e30", "hydrarec-uni-decay-e30", "sasrec-len800",
         "hydrarec-uni-decay-len800", "bert4rec", "hydrarec-bi", "hydrarec-bi-decay"]
TEST_COLUMNS = ["full/NDCG@10", "full/HR@10", "sampled/HR@10", "sampled/NDCG@10"]


def file_prefix(device: str, dataset: str = "ml-1m") -> str:
    """How the grid script names a finished row's metrics: decay-grid[-gpu][-<dataset>]-<row>.json."""
    return ("decay-grid-gpu-" if device == "gpu" else "decay-grid-") + (
        "" if dataset == "ml-1m" else f"{dataset}-")


def direction_of(metrics: dict) -> str:
    """'causal' or 'bidirectional': the recipe folder the row trained in, runs/<direction>[-gpu]/<row>."""
    return Path(metrics["config"]["out"]).parent.name.removesuffix("-gpu")


def seed_42_row(row: str) -> str:
    """The row that ``row`` repeats with another seed (SEED=N names it <row>-seedN), else ``row``."""
    return re.sub(r"-seed\d+$", "", row)


def finished_rows(results: Path, device: str = "cpu", direction: str | None = None,
                  dataset: str = "ml-1m") -> dict[str, dict]:
    """{row: metrics} of every finished row on ``device``, in ORDER (other seeds after their row,
    unknown rows last, by name);
    ``direction`` keeps only rows trained under runs/<direction>[-gpu]/."""
    prefix = file_prefix(device, dataset)
    others = tuple(f"{name}-" for name in DATASETS if name != dataset) + (("gpu-",) if device == "cpu" else ())
    rows = {}
    for path in results.glob(f"{prefix}*.json"):
        row = path.stem.removeprefix(prefix)
        if row.startswith(others):
            continue
        metrics = json.loads(path.read_text())
        if direction is None or direction_of(metrics) == direction:
            rows[row] = metrics
    rank = {row: i for i, row in enumerate(ORDER)}
    return {row: rows[row] for row in sorted(rows, key=lambda r: (rank.get(seed_42_row(r), len(ORDER)), r))}


# The rows of the README's headline table, per data set: the grid's six models, each from
# scratch with the defaults of its direction (scripts/decay_grid.sh DATASET ROW). Notebook 05
# compares exactly these rows; a row that has not finished is left out.
HEADLINE_ROWS = ("sasrec", "hydrarec-uni", "hydrarec-uni-decay", "bert4rec", "hydrarec-bi", "hydrarec-bi-decay")


def headline_runs(dataset: str, results: Path = ROOT / "results") -> dict[str, dict]:
    """{row: metrics} of the finished headline rows of ``dataset`` (``results/decay-grid-[<dataset>-]<row>.json``)."""
    paths = {row: results / f"{file_prefix('cpu', dataset)}{row}.json" for row in HEADLINE_ROWS}
    return {row: dict(json.loads(path.read_text()), file=path.name) for row, path in paths.items() if path.exists()}


def headline_table(dataset: str, results: Path = ROOT / "results") -> list[str]:
    """The README's table of ``dataset``: one line per finished headline row."""
    lines = ["| model | training | epochs | s/epoch | " + " | ".join(TEST_COLUMNS).replace("/", " ") + " | metrics |",
             "|" + " --- |" * 9]
    for row, run in headline_runs(dataset, results).items():
        direction = direction_of(run)
        test = run["test"]
        lines.append(f"| {MODELS[row].model_class.__name__} | defaults ({direction} recipe) | {run['epochs_run']} | "
                     f"{run['seconds_per_epoch']:.0f} | " + " | ".join(f"{test[c]:.4f}" for c in TEST_COLUMNS)
                     + f" | [json](results/{run['file']}) |")
    return lines


def minutes_to_best(metrics: dict) -> float:
    """Training minutes (validation excluded) up to and including the best validation epoch."""
    return sum(h["seconds"] for h in metrics["history"] if h["epoch"] <= metrics["best_epoch"]) / 60


def verdicts(dataset: str, results: Path = ROOT / "results") -> list[str]:
    """Each Hydra row against the softmax row of its direction (models.MODELS): quality and time ratios."""
    runs, lines = headline_runs(dataset, results), []
    softmax = {MODELS[row].direction: row for row in HEADLINE_ROWS if MODELS[row].attention_kind == "softmax"}
    for variant in HEADLINE_ROWS:
        base = softmax[MODELS[variant].direction]
        if variant != base and base in runs and variant in runs:
            v, b = runs[variant], runs[base]
            quality = v["test"]["full/NDCG@10"] / b["test"]["full/NDCG@10"]
            lines.append(f"{dataset}: {variant} vs {base}: full NDCG@10 {v['test']['full/NDCG@10']:.4f} vs "
                         f"{b['test']['full/NDCG@10']:.4f} (x{quality:.3f}, "
                         f"{'at least matches' if quality >= 1 else 'behind'}); s/epoch "
                         f"{v['seconds_per_epoch']:.1f} vs {b['seconds_per_epoch']:.1f}; training to the "
                         f"best epoch ({v['best_epoch']} vs {b['best_epoch']}) {minutes_to_best(v):.0f} vs "
                         f"{minutes_to_best(b):.0f} min")
    return lines


def test_table(rows: dict[str, dict], device: str = "cpu", dataset: str = "ml-1m") -> list[str]:
    """One line per row: epochs run (best validation epoch), max_len, seconds per epoch, test metrics."""
    prefix = file_prefix(device, dataset)
    lines = ["| row | L | epochs (best) | s/epoch | " + " | ".join(TEST_COLUMNS).replace("/", " ")
             + " | metrics |", "| --- " * (5 + len(TEST_COLUMNS)) + "|"]
    for row, m in rows.items():
        stop = ", early stop" if m["stop_reason"] == "early stopping" else ""
        test = " | ".join(f"{m['test'][c]:.4f}" for c in TEST_COLUMNS)
        lines.append(f"| {row} | {m['config']['max_len']} | {m['epochs_run']} ({m['best_epoch']}){stop} | "
                     f"{m['seconds_per_epoch']:.1f} | {test} | [json](../results/{prefix}{row}.json) |")
    return lines


def validation_table(rows: dict[str, dict], every: int = 10) -> list[str]:
    """Validation full NDCG@10 (averaged weights) every ``every`` epochs; '-' after a row stopped."""
    last = max(m["epochs_run"] for m in rows.values())
    epochs = list(range(every, last + 1, every))
    lines = ["| epoch | " + " | ".join(map(str, epochs)) + " |", "| --- " * (1 + len(epochs)) + "|"]
    for row, m in rows.items():
        valid = {h["epoch"]: h["valid"]["full/NDCG@10"] for h in m["history"] if "valid" in h}
        cells = [f"{valid[e]:.4f}" if e in valid else "-" for e in epochs]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="which rows (default cpu)")
    parser.add_argument("--direction", choices=["causal", "bidirectional"], help="only this recipe's rows")
    parser.add_argument("--dataset", choices=list(DATASETS), default="ml-1m", help="whose rows (default ml-1m)")
    parser.add_argument("--valid-every", type=int, default=10, help="validation table step in epochs (0: none)")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of decay-grid-*.json")
    parser.add_argument("--headline", action="store_true",
                        help="the README's headline table of --dataset and its verdicts instead")
    args = parser.parse_args(argv)
    if args.headline:
        lines = [*headline_table(args.dataset, args.results), "", *verdicts(args.dataset, args.results)]
        print("\n".join(lines))
        return lines
    rows = finished_rows(args.results, args.device, args.direction, args.dataset)
    if not rows:
        raise SystemExit(f"no finished {args.device} {args.dataset} rows in {args.results}: run "
                         f"scripts/decay_grid.sh {args.dataset} first")
    lines = test_table(rows, args.device, args.dataset)
    if args.valid_every:
        for direction in ("causal", "bidirectional"):
            chosen = {r: m for r, m in rows.items() if direction_of(m) == direction}
            if chosen:
                lines += ["", *validation_table(chosen, args.valid_every)]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
