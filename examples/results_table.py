"""Print a Markdown table of finished runs: the metrics.json files that train_ml1m.py writes.

    python examples/results_table.py runs/*/metrics.json
"""
from __future__ import annotations

import json
import sys

COLUMNS = [("full/HR@10", "full HR@10"), ("full/NDCG@10", "full NDCG@10"),
           ("sampled/HR@10", "sampled HR@10"), ("sampled/NDCG@10", "sampled NDCG@10")]


def table(paths) -> str:
    header = ["model", "epochs (best)", "s/epoch", "device", *[title for _, title in COLUMNS]]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        metrics = [f"{run['test'][key]:.4f}" if key in run["test"] else "-" for key, _ in COLUMNS]
        row = [run["model"], f"{run['epochs_run']} ({run.get('best_epoch', '?')})",
               f"{run['seconds_per_epoch']:.0f}", run.get("machine", run["device"]), *metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(table(sys.argv[1:]))
