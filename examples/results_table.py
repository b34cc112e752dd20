"""Print Markdown tables of finished runs: the metrics.json files that train_ml1m.py writes.

    python examples/results_table.py runs/*/metrics.json
    python examples/results_table.py --epochs 10,20,40 runs/*/metrics.json

The first table holds the test metrics (of the best validation epoch); the second the
validation full-ranking NDCG@10 along training, to compare models at equal epochs
(only the epochs listed by --epochs, if given).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass

from tinyhydra.errors import DataFormatError, UsageError
from trainer import cli
from trainer.config import Config, bidirectional, validate, with_recipe

COLUMNS = [("full/HR@10", "full HR@10"), ("full/NDCG@10", "full NDCG@10"),
           ("sampled/HR@10", "sampled HR@10"), ("sampled/NDCG@10", "sampled NDCG@10")]
# Size and training-recipe flags named in a run's label when they differ from train.py's
# defaults for its model (as a run records them: validate() resolves --loss auto), so two
# runs of one model with different sizes or recipes get different rows.
RECIPE_FLAGS = ("dim", "heads", "loss", "lr", "weight_decay", "mask_prob", "mask_last", "random_window", "ema")


def recipe_defaults(model: str) -> dict:
    """The recipe flags' defaults of a run of ``model`` (its direction's recipe)."""
    defaults = dataclasses.asdict(validate(with_recipe(Config(model=model), set())))
    return {name: defaults[name] for name in RECIPE_FLAGS}


@dataclass
class Options:
    paths: list[str] = cli.flag([], "metrics.json files of finished runs", positional=True)
    epochs: str = cli.flag("", "comma-separated epochs of the history table, e.g. 10,20,40; "
                               "'' = every validated epoch")


def load_run(path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise DataFormatError(path, None, f"is not a readable metrics.json ({error}); give the "
                              "metrics.json files that train.py writes") from None


def run_label(run: dict) -> str:
    """'bert4rec --dim 256 --mask-last 1.0': the model and its non-default flags."""
    config = run.get("config", {})
    flags = [f"--{name.replace('_', '-')} {config[name]}" for name, default in recipe_defaults(run["model"]).items()
             if name in config and config[name] != default
             and not (name.startswith("mask") and not bidirectional(run["model"]))]
    return " ".join([run["model"], *flags])


def seconds_text(seconds: float) -> str:
    """Whole seconds, with one decimal below 10 s (GPU epochs take a few seconds)."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


def table(paths) -> str:
    header = ["model", "epochs (best)", "s/epoch", "device", *[title for _, title in COLUMNS]]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in map(load_run, paths):
        metrics = [f"{run['test'][key]:.4f}" if key in run["test"] else "-" for key, _ in COLUMNS]
        row = [run_label(run), f"{run['epochs_run']} ({run.get('best_epoch', '?')})",
               seconds_text(run["seconds_per_epoch"]), run.get("machine", run["device"]), *metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def history_table(paths, key: str = "full/NDCG@10", epochs=None) -> str:
    runs = [(run_label(run), {h["epoch"]: h["valid"][key] for h in run["history"] if "valid" in h})
            for run in map(load_run, paths)]
    if epochs is None:
        epochs = sorted(set().union(*(scores for _, scores in runs)))
    lines = ["| model | " + " | ".join(f"ep {e}" for e in epochs) + " |",
             "|" + " --- |" * (len(epochs) + 1)]
    for model, scores in runs:
        cells = [f"{scores[e]:.4f}" if e in scores else "" for e in epochs]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def epoch_list(text: str) -> list[int] | None:
    """``"10,20,40"`` -> [10, 20, 40]; ``""`` -> None (every epoch)."""
    if not text:
        return None
    try:
        return [int(e) for e in text.split(",")]
    except ValueError:
        raise UsageError(f"--epochs {text}: give a comma-separated list of epoch numbers, "
                         "e.g. --epochs 10,20,40") from None


def main(argv=None) -> None:
    with cli.one_line_errors():
        options, _ = cli.parse_config(Options, sys.argv[1:] if argv is None else argv,
                                      description=__doc__)
        epochs = epoch_list(options.epochs)
        print(table(options.paths))
        print()
        print(history_table(options.paths, epochs=epochs))


if __name__ == "__main__":
    main()
