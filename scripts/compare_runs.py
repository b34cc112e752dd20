"""Is one run really better than another? Paired bootstrap over the test users.

    python scripts/compare_runs.py runs/causal/sasrec runs/causal/hydrarec-uni-decay runs/causal/hydrarec-uni
    python scripts/compare_runs.py BASELINE RUN [RUN ...] --which valid --metrics NDCG@10 HR@10
    python scripts/compare_runs.py runs/causal/hydrarec-uni-decay-e300   # one run: its intervals

Each run folder's best weights (best.npz) rank every user's held-out item among all items
(the ``full`` protocol of docs/results.md); the first run is the baseline. For each other
run it prints its metrics with the 95% bootstrap interval of each mean over users; for each
other run and metric, the difference in the mean over users, its 95% interval from
resampling the users (the same users for both runs, so the interval is that of the
difference itself, not of two separate means), and how often a resample finds no gain.
A run's recomputed metrics must match its metrics.json (a near-tie may move by round-off
of code changed since the run): the script stops if one differs by more than 0.001.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the training app, examples/trainer

from tinyhydra import models
from tinyhydra.engine import checkpoint
from tinyhydra.rec import data, metrics
from trainer.config import Config, bidirectional, model_kwargs


def load_run(folder: Path) -> tuple[Config, dict | None]:
    """The run's config (from metrics.json, or its checkpoint while it still trains) and
    its metrics.json (None while it trains)."""
    finished = folder / "metrics.json"
    if finished.exists():
        result = json.loads(finished.read_text())
        return Config(**result["config"]), result
    if not (folder / "checkpoint.npz").exists():
        raise SystemExit(f"{folder}: no metrics.json or checkpoint.npz: not a run folder of examples/train_ml1m.py")
    saved = checkpoint.load(folder / "checkpoint.npz")["state"]["config"]
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in saved.items() if k in fields}), None


def user_ranks(folder: Path, config: Config, split, which: str, protocol: str = "full"):
    """(U,) rank of every user's ``which`` target under the run's best weights, by ``protocol``
    (full: among all items; sampled: among the 100 negatives the run's seed draws, the same
    for every run of that seed, so the comparison stays paired)."""
    best = folder / "best.npz"
    if not best.exists():
        raise SystemExit(f"{folder}: no best.npz yet (written at the first validation)")
    model = models.build_model(config.model, split.num_items, **model_kwargs(config))
    model.load_state_dict(checkpoint.load(best))
    model.eval()
    mask_token = model.mask_token if bidirectional(config.model) else None
    return metrics.evaluation_ranks(model.predict_scores, split, which, config.max_len, protocols=(protocol,),
                                    seed=config.seed, append_mask_token=mask_token)[protocol]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders; the first is the baseline (one alone: its intervals only)")
    parser.add_argument("--data", help="the data file (default: the one the first run trained on)")
    parser.add_argument("--which", choices=["test", "valid"], default="test", help="which targets (default test)")
    parser.add_argument("--metrics", nargs="+", default=["NDCG@10", "HR@10"],
                        help=f"names of tinyhydra.rec.metrics.METRICS: {', '.join(metrics.metric_names())}")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--protocol", choices=["full", "sampled"], default="full",
                        help="rank among all items or among 100 sampled negatives (default full)")
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be >= 1")
    loaded = [load_run(folder) for folder in args.runs]
    split = data.leave_one_out(data.load_dataset(args.data or loaded[0][0].data))
    values, report = {}, {}
    for folder, (config, result) in zip(args.runs, loaded):
        ranks = user_ranks(folder, config, split, args.which, args.protocol)
        measured = metrics.metrics_from_ranks(ranks)
        deviation = None
        if result is not None:  # the same weights, data and split must give the same numbers
            prefix = f"{args.protocol}/"
            stored = {k.removeprefix(prefix): v for k, v in result[args.which].items() if k.startswith(prefix)}
            deviation = max(abs(measured[k] - stored[k]) for k in stored)
            if deviation > 1e-3:  # round-off of code changed since the run may move a near-tie, no more
                raise SystemExit(f"{folder}: recomputed {args.which} metrics {measured} differ from "
                                 f"metrics.json {stored}: other data, or other weights than its best.npz?")
        values[folder] = {name: metrics.per_user_values(ranks, name) for name in args.metrics}
        intervals = {name: metrics.bootstrap_interval(values[folder][name], args.resamples) for name in args.metrics}
        shown = "  ".join(f"{name} {measured[name]:.4f} [{intervals[name]['low']:.4f}, {intervals[name]['high']:.4f}]"
                          for name in args.metrics)
        print(f"{folder.name:>28}: {config.model}, {len(ranks)} users, {args.protocol} {shown}"
              + ("" if deviation is None else " (metrics.json: the same)" if deviation == 0
                 else f" (metrics.json within {deviation:.0e})"))
    baseline = args.runs[0]
    if len(args.runs) == 1:
        return report
    print(f"\ndifference to {baseline.name}, {args.which} {args.protocol}, paired bootstrap of {args.resamples} "
          "resamples:")
    for folder in args.runs[1:]:
        for name in args.metrics:
            r = metrics.paired_bootstrap(values[baseline][name], values[folder][name], args.resamples)
            relative = r["difference"] / max(values[baseline][name].mean(), 1e-300)
            print(f"{folder.name:>28}  {name:>8} {r['difference']:+.4f} ({relative:+.1%}), 95% interval "
                  f"[{r['low']:+.4f}, {r['high']:+.4f}], no gain in {r['not_better']:.1%} of resamples")
            report[(folder.name, name)] = r
    return report


if __name__ == "__main__":
    main()
