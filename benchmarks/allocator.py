"""Freed memory kept for reuse (tinyhydra/engine/memory.py) against glibc's defaults, as a user
gets them: the training script in separate processes, the two settings interleaved.

    python benchmarks/allocator.py --data ml-1m.txt.gz --steps 25 --repeats 2     # results/allocator/

For each model, each setting (``TINYHYDRA_KEEP_FREED_MEMORY=1``, the default, and ``=0``)
and each repeat, one process runs ``examples/train.py --epochs 1 --max-steps STEPS --eval
none`` at ML-1M's shapes; the parent reads the child's resource usage: CPU seconds (user +
system, so time spent faulting pages in counts), minor page faults and peak resident memory,
each for the whole process (start-up and data loading included, the same in both settings).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("sasrec", "hydrarec-uni", "hydrarec-uni-decay")
SETTINGS = {"kept": "1", "given back": "0"}
# runs the training script and writes the process's own peak RSS (KiB) to $PEAK_RSS_FILE
WRAPPER = """import os, resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    with open(os.environ["PEAK_RSS_FILE"], "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def one_run(data: str, model: str, keep: str, steps: int) -> dict:
    """Resource usage of one training process (its own, read through RUSAGE_CHILDREN deltas)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "TINYHYDRA_KEEP_FREED_MEMORY": keep, "OPENBLAS_NUM_THREADS": "1",
               "PEAK_RSS_FILE": str(Path(out) / "rss")}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", WRAPPER, str(ROOT / "examples" / "train.py"), "--data", data,
                        "--model", model, "--epochs", "1", "--max-steps", str(steps), "--eval", "none",
                        "--progress", "false", "--out", str(Path(out) / "run")], env=env, check=True,
                       capture_output=True)
        wall = time.perf_counter() - start
        peak_kib = int((Path(out) / "rss").read_text())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_seconds": wall,
            "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "minor_faults": after.ru_minflt - before.ru_minflt,
            "peak_rss_gib": peak_kib / 2**20}  # ru_maxrss is in KiB on Linux


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a training file, e.g. ml-1m.txt.gz")
    parser.add_argument("--steps", type=int, default=25, help="training steps per process (default 25)")
    parser.add_argument("--repeats", type=int, default=2, help="processes per model and setting (default 2)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default all three)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "allocator",
                        help="folder for allocator.json (default results/allocator/)")
    args = parser.parse_args(argv)
    runs = {model: {name: [] for name in SETTINGS} for model in args.models.split(",")}
    for model in runs:
        for _ in range(args.repeats):
            for name, keep in SETTINGS.items():  # interleaved, so a change in load hits both
                runs[model][name].append(one_run(args.data, model, keep, args.steps))
    print(f"{args.steps} steps per process, best of {args.repeats} processes (CPU s = user + system)")
    print(f"{'model':<20}{'setting':<12}{'CPU s':>8}{'faults/step':>13}{'peak RSS GiB':>14}")
    for model, settings in runs.items():
        for name, results in settings.items():
            best = min(results, key=lambda r: r["cpu_seconds"])
            print(f"{model:<20}{name:<12}{best['cpu_seconds']:>8.1f}{best['minor_faults'] / args.steps:>13,.0f}"
                  f"{best['peak_rss_gib']:>14.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "allocator.json").write_text(json.dumps({"steps": args.steps, "runs": runs}, indent=2))
    return runs


if __name__ == "__main__":
    main()
