"""Does today's code reproduce a finished run? Retrain its first epochs with the flags it
recorded and compare them, number for number, with its metrics.json.

    python scripts/rerun_check.py results/decay-grid-sasrec-e30.json --epochs 2
    python scripts/rerun_check.py results/decay-grid-bert4rec.json --epochs 2 --data ml-1m.txt.gz

Each of the first ``--epochs`` epochs' training loss and (where the run validated) every
validation metric must be equal as floats, not close: a run is a pure function of its flags,
its data and its seed, on one BLAS thread as scripts/decay_grid.sh trains (BLAS splits a
product's sums by thread, so another thread count rounds otherwise): set here unless
OPENBLAS_NUM_THREADS is given. Exit status 0 when all are equal, 1 (with the first difference)
when not.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import train  # noqa: E402

# flags of the recorded run that do not change what it computes
NOT_REPLAYED = ("out", "resume", "overwrite", "progress", "max_minutes")


def replay_argv(config: dict, epochs: int, out: Path, data: str | None) -> list[str]:
    """The command line of the recorded ``config``, cut to ``epochs`` epochs, into ``out``."""
    fields = {f.name for f in dataclasses.fields(train.Config)}
    argv = []
    for name, value in config.items():
        if name in fields and name not in NOT_REPLAYED and name != "epochs":
            argv += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    if data:
        argv += ["--data", data]
    return argv + ["--epochs", str(epochs), "--out", str(out), "--progress", "false"]


def first_difference(recorded: list[dict], replayed: list[dict]) -> str | None:
    """Where the replayed history first differs from the recorded one, or None."""
    for old, new in zip(recorded, replayed):
        if old["loss"] != new["loss"]:
            return f"epoch {old['epoch']}: loss {new['loss']!r}, recorded {old['loss']!r}"
        for key, value in old.get("valid", {}).items():
            if new.get("valid", {}).get(key) != value:
                return f"epoch {old['epoch']}: valid {key} {new.get('valid', {}).get(key)!r}, recorded {value!r}"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", type=Path, help="a finished run's metrics.json (e.g. results/decay-grid-*.json)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to replay (default 2)")
    parser.add_argument("--data", help="the run's data file, where its recorded path is not here")
    args = parser.parse_args(argv)
    recorded = json.loads(args.metrics.read_text())
    with tempfile.TemporaryDirectory() as out:
        replayed = train.main(replay_argv(recorded["config"], args.epochs, Path(out) / "run", args.data))
    difference = first_difference(recorded["history"][:args.epochs], replayed["history"])
    if difference:
        print(f"{args.metrics}: differs at {difference}")
        return 1
    print(f"{args.metrics}: the first {args.epochs} epochs reproduce bit for bit "
          f"(losses {[h['loss'] for h in replayed['history']]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
