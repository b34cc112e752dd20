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

from tinyhydra.data import DATASETS

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
    args = parser.parse_args(argv)
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
