"""Train and evaluate a sequential recommender on any data set.

    python examples/train.py --dataset beauty --model hydrarec-bi-decay
    python examples/train.py --model bert4rec --device gpu --out runs/bert4rec   # ML-1M
    python examples/train.py --data Beauty.txt.gz --dataset beauty               # a local copy
    python examples/train.py --out runs/bert4rec --resume      # continue a stopped run
    python examples/train.py --model bert4rec --max-minutes 60 # fit a one-hour budget

Models: sasrec, hydrarec-uni, hydrarec-uni-decay, linrec-uni (causal, SASRec-style) and
bert4rec, hydrarec-bi, hydrarec-bi-decay, linrec-bi (bidirectional, BERT4Rec-style). Every flag is a field of
trainer.config.Config (`--batch-size 64` sets `batch_size`); --help lists them. Without `--data` the
--dataset (ml-1m, ml-20m, beauty: tinyhydra.rec.data.DATASETS) is downloaded into the cache (TINYHYDRA_CACHE,
default ~/.cache/tinyhydra) and checked by its checksum. `examples/train_ml1m.py` is this script.

Loss defaults (`--loss auto`): full softmax cross-entropy over all items (3,416 in ML-1M) for
every model. For the causal models it replaces SASRec's original one-negative BCE
(`--loss bce`), which needs ~200+ epochs to converge and stays below the full-CE
results at any budget (Klenitskiy & Vasilev 2023, Petrov & Macdonald 2023);
`--loss sampled --negatives N` is the cheap middle ground for large catalogues.

Outputs in --out: checkpoint.npz (after every epoch, written atomically; an epoch
interrupted by Ctrl-C or SIGTERM is discarded and --resume replays it exactly),
best.npz (weights with the best validation NDCG@10; with --ema, the averaged weights),
metrics.json. An --out that already holds a run needs --resume or --overwrite.

Every flag and the data are checked before anything is trained or written. A mistake
ends with one line on stderr: exit status 2 for flags (usage), 1 for data and
checkpoint files; see docs/troubleshooting.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the app beside this file: trainer/

import tinyhydra as th
from tinyhydra import models, optim
from tinyhydra.engine import backend, checkpoint
from tinyhydra.errors import BackendError, DataFormatError, UsageError
from tinyhydra.rec import data, metrics
from trainer import cli, runs
from trainer.config import (
    SAMPLED_EVAL_NEGATIVES,
    Config,
    bidirectional,
    model_kwargs,
    validate,
    with_recipe,
)

try:
    from tqdm.auto import tqdm
except ImportError:  # tqdm is optional: fall back to a silent iterator
    def tqdm(iterable, **kwargs):
        return iterable

def parse_args(argv) -> tuple[Config, set[str]]:
    """The checked config of the flags in ``argv`` over the defaults, and the names of the flags given."""
    config, given = cli.parse_config(Config, argv, description=__doc__)
    if config.data and "dataset" not in given:
        config.dataset = ""  # a local file of no named data set
    return validate(with_recipe(config, given)), given


# ----------------------------------------------------------------------- training
def moving_average(config: Config, model, saved: dict | None):
    """The --ema average of the weights (None without --ema). A resumed run continues its
    average; a run that had none starts it from the weights it resumes with."""
    if not config.ema:
        return None
    ema = optim.ExponentialMovingAverage(model.parameters(), config.ema)
    if saved is not None and saved.get("ema"):
        ema.load_state_dict(saved["ema"])
        ema.decay = config.ema  # the command line wins
    return ema


def averaged_weights(ema):
    """``with averaged_weights(ema):`` evaluates (and saves) the averaged weights if there are any."""
    return ema.average_parameters() if ema else contextlib.nullcontext()


def build(config: Config, num_items: int):
    model = models.build_model(config.model, num_items, **model_kwargs(config)).to(config.device)
    optimizer = optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
                           weight_decay=config.weight_decay, decoupled_weight_decay=True)
    return model, optimizer


def epoch_batches(config: Config, split, model, rng, unused_ce_negatives: bool = False):
    """One epoch of batches. Full CE needs no negatives and draws none, except in runs
    begun with version-2 checkpoints (``unused_ce_negatives``), which resume exactly."""
    if bidirectional(config.model):
        return data.cloze_batches(split, config.batch_size, config.max_len, rng,
                                  mask_token=model.mask_token, mask_prob=config.mask_prob,
                                  mask_last_prob=config.mask_last,
                                  random_window_prob=config.random_window)
    num_negatives = {"sampled": config.negatives, "bce": 1, "ce": int(unused_ce_negatives)}[config.loss]
    return data.causal_batches(split, config.batch_size, config.max_len, rng, num_negatives=num_negatives,
                               random_window_prob=config.random_window)


def steps_per_epoch(config: Config, num_batches: int) -> int:
    """The steps an epoch of ``num_batches`` batches takes (--max-steps caps it); the same every epoch."""
    return min(num_batches, config.max_steps) if config.max_steps else num_batches


def run_steps(config: Config, split) -> int:
    """The steps of the whole run: --epochs times the batches of one epoch (users with
    enough training items, as :func:`epoch_batches` takes them), each epoch capped by --max-steps."""
    fewest = 1 if bidirectional(config.model) else 2
    return config.epochs * steps_per_epoch(config, -(-sum(len(s) >= fewest for s in split.train)
                                                     // config.batch_size))


def train_one_epoch(config, epoch, model, optimizer, ema, batches, schedule=None) -> tuple[float, float, int]:
    """Returns (mean loss, training seconds, steps). The loss is read back from the
    device only every few steps, so the GPU is not synchronised on every step. A
    ``schedule`` (--lr-schedule) sets the learning rate of every next step."""
    model.train()
    xp = backend.xp_for_device(config.device)
    total = steps_per_epoch(config, len(batches))
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", leave=False, disable=not config.progress)
    loss_sum, steps, pending = 0.0, 0, []
    start = time.perf_counter()
    for batch in bar:
        optimizer.zero_grad()
        loss = model.loss(batch, loss=config.loss, num_negatives=config.negatives)
        loss.backward()
        optimizer.step()
        if schedule:
            schedule.step()
        if ema:
            ema.update()
        pending.append(loss.data)
        steps += 1
        if steps % 10 == 0 or steps == total:
            loss_sum += sum(float(x) for x in pending)
            pending.clear()
            if config.progress and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_sum / steps:.4f}")
        if steps >= total:
            break
    loss_sum += sum(float(x) for x in pending)
    backend.synchronize(xp)
    return loss_sum / max(steps, 1), time.perf_counter() - start, steps


def evaluate(config: Config, model, split, which: str) -> dict:
    if config.eval == "none":
        return {}
    protocols = ("full", "sampled") if config.eval == "both" else (config.eval,)
    model.eval()
    mask_token = model.mask_token if bidirectional(config.model) else None
    return metrics.evaluate(model.predict_scores, split, which, config.max_len, protocols=protocols,
                            seed=config.seed, append_mask_token=mask_token, progress=config.progress)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stop_signals_save_checkpoints():
    """Ctrl-C and SIGTERM (e.g. `kill`, a batch scheduler) both raise KeyboardInterrupt, so the
    training loop saves a checkpoint before exiting; the previous handlers come back afterwards.

    A shell starts background jobs with SIGINT ignored, and Python then never raises
    KeyboardInterrupt; installing the handlers explicitly covers that case too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None) -> dict:
    """Checks everything (flags, run folder, checkpoint, data), then trains; a mistake ends
    with one line on stderr and exit status 2 (flags) or 1 (files)."""
    with cli.one_line_errors():
        config, saved, split, data_sha256 = prepare(sys.argv[1:] if argv is None else argv)
        with stop_signals_save_checkpoints():
            return train(config, split, saved, data_sha256)


def prepare(argv) -> tuple[Config, dict | None, data.Split, str]:
    """(config, checkpoint tree or None, split, sha256 of the data file), once every check
    has passed; nothing is written before that."""
    config, given = parse_args(argv)
    runs.check_run_folder(config)
    saved = None
    if config.resume:
        saved = runs.read_checkpoint(config)  # read once: the run's flags, then its weights
        config = runs.resumed_config(config, given, saved)
    if config.device == "gpu":
        try:
            backend.require_cupy()
        except BackendError as error:
            raise BackendError(f"--device gpu: {error}") from None
    return config, saved, *load_split(config)


def load_split(config: Config) -> tuple[data.Split, str]:
    """The leave-one-out split of --data (downloaded without it), checked against the flags,
    and the sha256 of the file it was read from (for metrics.json)."""
    path = data_path(config)
    split = data.leave_one_out(data.load_dataset(path, config.data_format))
    evaluated = np.flatnonzero(split.test_target)
    if len(evaluated) == 0:
        raise DataFormatError(path, None, "no user has 3 or more interactions, so nothing can be "
                              "validated or tested (the last two items of a user are held out)")
    trained = [s for s in split.train if len(s) >= (1 if bidirectional(config.model) else 2)]
    if config.loss in ("sampled", "bce") and data.fewest_unseen_items(trained, split.num_items) < 1:
        raise UsageError(f"--loss {config.loss} samples items a user never trained on, but a user "
                         f"in {path} trained on every item; use --loss ce")
    if config.lr_schedule == "cosine" and config.warmup_steps >= (total := run_steps(config, split)):
        raise UsageError(f"--warmup-steps {config.warmup_steps}: the run has {total} steps in all; "
                         "give fewer warm-up steps or more --epochs")
    if config.eval in ("both", "sampled"):
        fewest = data.fewest_unseen_items(data.interacted_items(split, evaluated), split.num_items)
        if fewest < SAMPLED_EVAL_NEGATIVES:
            raise UsageError(
                f"--eval {config.eval}: the sampled protocol ranks each target among "
                f"{SAMPLED_EVAL_NEGATIVES} items the user never interacted with, but in {path} "
                f"({split.num_items} items) a user has only {fewest}; use --eval full")
    return split, data.file_digest(path, "sha256")


def data_path(config: Config) -> str:
    """--data, or the --dataset's file in the cache (downloaded and checked first if needed)."""
    return config.data or str(data.DATASETS[config.dataset].download())


def wall_clock() -> float:
    """Seconds on a monotonic clock (one function, so a test can stand in a fake clock)."""
    return time.monotonic()


def train(config: Config, split: data.Split, saved: dict | None = None, data_sha256: str = "") -> dict:
    """Trains (continuing from the checkpoint tree ``saved`` if given), evaluates, writes
    metrics.json (with ``data_sha256``, the file's, from :func:`load_split`) and returns its contents."""
    started = wall_clock()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.overwrite:
        for name in runs.RUN_FILES:
            (out / name).unlink(missing_ok=True)
    th.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, optimizer = build(config, split.num_items)
    print(f"{config.model}: {model.num_parameters():,} parameters, {split.num_users} users, "
          f"{split.num_items} items, device {config.device}, loss {config.loss}")

    state = {"epochs_done": 0, "best_ndcg": -1.0, "best_epoch": 0, "bad_validations": 0,
             "history": [], "train_seconds": 0.0, "train_steps": 0, "unused_ce_negatives": False}
    checkpoint_path = runs.checkpoint_path_of(config)
    if saved is not None:
        state = runs.restore_training_state(saved, model, optimizer, rng, checkpoint_path)
        print(f"resumed after epoch {state['epochs_done']} (best valid NDCG@10 "
              f"{state['best_ndcg']:.4f} at epoch {state['best_epoch']})")
        for name in ("lr", "weight_decay"):  # the command line wins over the checkpoint
            previous, wanted = getattr(optimizer, name), getattr(config, name)
            if name == "lr" and config.lr_schedule != "constant":
                optimizer.lr = wanted  # the schedule's base (the checkpoint holds a scheduled value)
                continue
            if previous != wanted:
                print(f"--{name.replace('_', '-')} {wanted} replaces the checkpoint's {previous}")
                setattr(optimizer, name, wanted)

    ema = moving_average(config, model, saved)
    state["config"] = dataclasses.asdict(config)  # what --resume takes flags from
    if saved is None:  # epoch 0, so an interrupted first epoch can be resumed too
        runs.save_training_state(checkpoint_path, model, optimizer, ema, state, rng)
    key = "full/NDCG@10" if config.eval in ("both", "full") else "sampled/NDCG@10"
    stop_reason, longest_epoch, schedule = "epochs", 0.0, None
    if config.lr_schedule == "cosine":  # continues from the step count of a resumed run
        if config.eval != "none" and config.patience * config.eval_every < config.epochs:
            # measured on ML-1M: patience 10 ended 300-epoch cosine runs at epoch 190, lr still 0.3x
            print(f"note: --patience {config.patience} may stop the run before the cosine schedule has "
                  f"annealed the learning rate; --patience {-(-config.epochs // config.eval_every)} runs every epoch")
        schedule = optim.CosineAnnealingLR(optimizer, run_steps(config, split), config.warmup_steps,
                                           last_step=state["train_steps"])
    try:
        for epoch in range(state["epochs_done"] + 1, config.epochs + 1):
            if state["bad_validations"] >= config.patience:
                stop_reason = "early stopping"
                break
            # stop when one more epoch as long as the longest so far (validation included)
            # would end past the limit, so a run under a hard wall-clock limit ends in time
            if config.max_minutes and (wall_clock() - started + longest_epoch
                                       > 60 * config.max_minutes):
                stop_reason = "time limit"
                print(f"--max-minutes {config.max_minutes}: stopping after epoch {epoch - 1}; "
                      "--resume continues")
                break
            epoch_started = wall_clock()
            th.manual_seed(runs.epoch_seed(config.seed, epoch))
            batches = epoch_batches(config, split, model, rng, state["unused_ce_negatives"])
            loss, seconds, steps = train_one_epoch(config, epoch, model, optimizer, ema, batches, schedule)
            record = {"epoch": epoch, "loss": loss, "seconds": seconds}
            if schedule:
                record["lr"] = optimizer.lr  # the next step's
            state["train_seconds"] += seconds
            state["train_steps"] += steps
            if config.eval != "none" and epoch % config.eval_every == 0:
                with averaged_weights(ema):
                    valid = evaluate(config, model, split, "valid")
                    record["valid"] = valid
                    if valid[key] > state["best_ndcg"]:
                        state.update(best_ndcg=valid[key], best_epoch=epoch, bad_validations=0)
                        checkpoint.save(model.state_dict(), out / "best.npz")
                    else:
                        state["bad_validations"] += 1
            state["history"].append(record)
            state["epochs_done"] = epoch
            runs.save_training_state(checkpoint_path, model, optimizer, ema, state, rng)
            shown = f" valid {key} {record['valid'][key]:.4f}" if "valid" in record else ""
            print(f"epoch {epoch:3d}  loss {loss:.4f}  {seconds:.1f}s{shown}", flush=True)
            longest_epoch = max(longest_epoch, wall_clock() - epoch_started)
    except KeyboardInterrupt:
        # The unfinished epoch is discarded: checkpoint.npz still holds the state after the
        # last finished epoch, from which --resume replays the interrupted one exactly.
        print(f"\ninterrupted during epoch {state['epochs_done'] + 1}: {checkpoint_path} holds "
              f"the state after epoch {state['epochs_done']}; continue with --resume")
        sys.exit(130)

    if config.eval != "none" and (out / "best.npz").exists():
        model.load_state_dict(checkpoint.load(out / "best.npz"))
    result = {
        "model": config.model,
        "dataset": config.dataset or Path(config.data).name,
        "data_sha256": data_sha256,
        "config": dataclasses.asdict(config),
        "device": config.device,
        "machine": describe_machine(config.device),
        "epochs_run": state["epochs_done"],
        "best_epoch": state["best_epoch"],
        "stop_reason": stop_reason,
        "train_seconds": state["train_seconds"],
        "seconds_per_epoch": state["train_seconds"] / max(len(state["history"]), 1),
        "valid": evaluate(config, model, split, "valid"),
        "test": evaluate(config, model, split, "test"),
        "history": state["history"],
    }
    runs.write_json_atomically(out / "metrics.json", result)
    print_table(result)
    return result


def describe_machine(device: str) -> str:
    return backend.gpu_name() if device == "gpu" else backend.cpu_name()


def print_table(result: dict) -> None:
    test = result["test"]
    if not test:
        return
    print(f"\ntest metrics of {result['model']} (best epoch {result['best_epoch']} of "
          f"{result['epochs_run']}, {result['seconds_per_epoch']:.1f} s/epoch on {result['device']})")
    names = metrics.metric_names()  # every registered metric, as metrics.json has them
    print(f"{'protocol':<10}" + "".join(f"{n:>9}" for n in names))
    for protocol in ("full", "sampled"):
        if f"{protocol}/{names[0]}" in test:
            print(f"{protocol:<10}" + "".join(f"{test[f'{protocol}/{n}']:>9.4f}" for n in names))


if __name__ == "__main__":
    main()
