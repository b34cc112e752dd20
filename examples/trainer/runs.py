"""A training run's folder and the checkpoint that resumes it exactly.

An --out folder holds one run: ``checkpoint.npz`` (the state after the last finished
epoch), ``best.npz`` (the best validated weights) and ``metrics.json``. A new run
refuses a folder that holds one unless told to start over (``overwrite``);
``--resume`` reads the checkpoint and takes every flag not on the command line from
the run's saved :class:`~trainer.config.Config`.

Exactness: the checkpoint holds the weights, Adam's moments, the batch generator's
state and the loop's state; the library's generators (dropout, sampled negatives) are
reseeded from (seed, epoch) at every epoch start (:func:`epoch_seed`); an interrupted
epoch is discarded. So k epochs + resume to N is, bit for bit, N epochs straight.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from tinyhydra.engine import checkpoint
from tinyhydra.errors import CheckpointError, UsageError

from .config import Config, validate

# Not taken from the checkpoint by --resume: the settings of one invocation, and the folder
# the checkpoint is read from (a run folder copied elsewhere goes on in its new place).
NOT_RESUMED = ("resume", "overwrite", "max_minutes", "progress", "out")
# Flags that fix the weights' shapes or meaning: --resume refuses other values than the run's.
ARCHITECTURE = ("model", "dim", "layers", "heads", "max_len")
RUN_FILES = ("checkpoint.npz", "best.npz", "metrics.json")
CHECKPOINT_VERSION = 3  # 3: the loop's state says whether full-CE epochs draw unused negatives
READABLE_VERSIONS = (2, 3)  # 2: reseeded per epoch; full CE drew one unused negative per position


def checkpoint_path_of(config: Config) -> Path:
    """Where the run in ``config.out`` keeps its checkpoint."""
    return Path(config.out) / "checkpoint.npz"


def check_run_folder(config: Config) -> None:
    """--out must be a folder, and one that holds no run unless --resume or --overwrite says
    what to do with it."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    if config.resume:
        if not checkpoint_path_of(config).exists():
            raise UsageError(f"--resume: no checkpoint at {checkpoint_path_of(config)}; "
                             "leave out --resume to start a new run there")
        return
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not config.overwrite:
        raise UsageError(f"--out {out} already holds a run ({', '.join(held)}): continue it with "
                         "--resume, start it over with --overwrite, or choose another --out")


def read_checkpoint(config: Config) -> dict:
    """The training checkpoint in --out, for --resume."""
    path = checkpoint_path_of(config)
    advice = (f"start over with --overwrite, or put an older copy of the run's checkpoint.npz "
              f"in {config.out}")
    try:
        saved = checkpoint.load(path, versions=READABLE_VERSIONS)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; {advice}") from None
    missing = sorted({"model", "optim", "state", "rng"} - set(saved))
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint (it has no {', '.join(missing)}); "
                              f"{advice}")
    return saved


def resumed_config(config: Config, given: set[str], saved: dict) -> Config:
    """Every flag not on the command line takes the value the run was trained with (its
    config is in the checkpoint ``saved``), so ``--out DIR --resume`` continues the run
    as it was; flags on the command line win, except those of ARCHITECTURE, which must
    agree with the run's. A checkpoint without a saved config keeps ``config``."""
    run_config = saved["state"].get("config")
    if not run_config:
        return config
    for name in ARCHITECTURE:
        if name in given and name in run_config and run_config[name] != getattr(config, name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"--resume: the run in {config.out} is a {run_config['model']} with {flag} "
                f"{run_config[name]}, not {flag} {getattr(config, name)}; leave out {flag} to "
                "continue it, or start a new run with --overwrite or another --out")
    names = {f.name for f in dataclasses.fields(Config)}
    kept = {name: value for name, value in run_config.items()
            if name in names and name not in given and name not in NOT_RESUMED}
    return validate(dataclasses.replace(config, **kept))


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to a temporary name, then rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def epoch_seed(seed: int, epoch: int) -> int:
    """The library generators' seed for ``epoch`` (dropout masks, sampled negatives).

    Reseeding at every epoch start, instead of checkpointing the generators, makes an
    epoch's random numbers depend only on (seed, epoch) on every backend (CuPy's
    generator state cannot be saved), so a run resumed after epoch k is exactly the
    run that never stopped."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def save_training_state(path: Path, model, optimizer, ema, state: dict, rng) -> None:
    """Everything :func:`restore_training_state` needs: weights, Adam, the --ema average,
    the loop's ``state`` (config included) and the batch generator ``rng``."""
    checkpoint.save({"version": CHECKPOINT_VERSION,
                     "model": model.state_dict(), "optim": optimizer.state_dict(),
                     "ema": ema.state_dict() if ema else None,
                     "state": state, "rng": rng.bit_generator.state}, path)


def restore_training_state(saved: dict, model, optimizer, rng, path) -> dict:
    """Weights, Adam state and RNG state from a checkpoint tree; returns the loop's state.

    Checkpoints of version 2 drew one (unused) negative per position for full CE; their
    runs keep doing so, so that they resume exactly."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optim"])
    except (KeyError, ValueError) as error:  # the flags agree (resumed_config), so the data differ
        raise CheckpointError(f"{path} does not fit this {type(model).__name__} ({error}); resume "
                              "with the data the run was trained on, or start over with --overwrite") from None
    rng.bit_generator.state = saved["rng"]
    saved["state"].setdefault("unused_ce_negatives", saved.get("version") == 2)
    return saved["state"]
