"""Train and evaluate a sequential recommender on MovieLens-1M.

    python examples/train_ml1m.py --model hydrarec-uni --device cpu
    python examples/train_ml1m.py --model bert4rec --device gpu --out runs/bert4rec
    python examples/train_ml1m.py --out runs/bert4rec --resume      # continue a stopped run
    python examples/train_ml1m.py --model bert4rec --max-minutes 60 # fit a one-hour budget

Models: sasrec, hydrarec-uni, hydrarec-uni-decay, linrec-uni (causal, SASRec-style)
and bert4rec, hydrarec-bi, hydrarec-bi-decay, linrec-bi (bidirectional, BERT4Rec-style). Every flag below is a field
of Config: `--batch-size 64` sets `batch_size`. Without `--data` the GroupLens
ml-1m.zip is downloaded into the cache (TINYHYDRA_CACHE, default ~/.cache/tinyhydra).

Loss defaults (`--loss auto`): full softmax cross-entropy over all 3,416 items for
every model. For the causal models it replaces SASRec's original one-negative BCE
(`--loss bce`), which needs ~200+ epochs to converge and stays below the full-CE
results at any budget (Klenitskiy & Vasilev 2023, Petrov & Macdonald 2023);
`--loss sampled --negatives N` is the cheap middle ground for large catalogues.

Outputs in --out: checkpoint.npz (every epoch, written atomically; also on Ctrl-C),
best.npz (weights with the best validation NDCG@10; with --ema, the averaged weights),
metrics.json.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinyhydra as th
from tinyhydra import backend, checkpoint, data, metrics, models, optim

try:
    from tqdm.auto import tqdm
except ImportError:  # tqdm is optional: fall back to a silent iterator
    def tqdm(iterable, **kwargs):
        return iterable


@dataclass
class Config:
    data: str = ""                 # SASRec .txt(.gz), ratings.dat or ml-1m.zip; "" = download ml-1m.zip
    model: str = "sasrec"          # a name of models.MODELS, e.g. hydrarec-uni or hydrarec-bi-decay
    device: str = "cpu"            # cpu or gpu (CuPy)
    epochs: int = 200
    batch_size: int = 128
    max_len: int = 200
    dim: int = 0                   # 0 = the model's default (SASRec 50, BERT4Rec 64)
    layers: int = 2
    heads: int = 0                 # 0 = the model's default (SASRec 1, BERT4Rec 2)
    dropout: float = -1.0          # < 0 = the model's default (SASRec 0.2, BERT4Rec 0.1)
    conv: int = 0                  # > 0: depthwise convolution of this width before Q/K/V
    fixed_decay: bool = False      # *-decay models: keep the initial half-lives (no learning)
    mask_prob: float = 0.2         # BERT4Rec cloze masking probability
    mask_last: float = 0.0         # probability of also masking a sequence's last item (cloze)
    random_window: float = 0.0     # probability that a sequence longer than max_len trains on
                                   # a random window of it instead of its last items
    lr: float = 1e-3
    weight_decay: float = 0.0
    ema: float = 0.0               # > 0: validate and keep a moving average of the weights (decay)
    loss: str = "auto"             # auto, ce, sampled, bce (see the module docstring)
    negatives: int = 256           # negatives per position for --loss sampled
    seed: int = 42
    eval: str = "both"             # both, full, sampled, none
    eval_every: int = 1            # validate every N epochs
    patience: int = 10             # stop after this many validations without a better NDCG@10
    max_steps: int = 0             # > 0: at most this many steps per epoch (smoke tests)
    max_minutes: float = 0.0       # > 0: start no epoch that would end past this wall time
    out: str = ""                  # "" = runs/<model>
    resume: bool = False
    progress: bool = True


BIDIRECTIONAL = {name for name, model_class in models.MODELS.items() if not model_class.causal}


def parse_args(argv) -> tuple[Config, set[str]]:
    """The config of ``--key value`` flags over the defaults, and the names of the flags given."""
    config, given = Config(), set()
    fields = {f.name: f for f in dataclasses.fields(Config)}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(__doc__)
            print("flags: " + " ".join(f"--{name.replace('_', '-')}" for name in fields))
            sys.exit(0)
        name = arg[2:].replace("-", "_") if arg.startswith("--") else None
        if name not in fields:
            sys.exit(f"unknown argument {arg!r}; known flags: "
                     + ", ".join(f"--{n.replace('_', '-')}" for n in fields))
        field_type = type(getattr(config, name))
        if field_type is bool:
            value, i = True, i + 1
            if i < len(argv) and argv[i].lower() in ("true", "false", "1", "0"):
                value, i = argv[i].lower() in ("true", "1"), i + 1
        else:
            if i + 1 >= len(argv):
                sys.exit(f"{arg} needs a value")
            try:
                value = field_type(argv[i + 1])
            except ValueError:
                sys.exit(f"{arg} expects a {field_type.__name__}, got {argv[i + 1]!r}")
            i += 2
        setattr(config, name, value)
        given.add(name)
    return validate(config), given


def validate(config: Config) -> Config:
    if config.model not in tuple(models.MODELS):
        sys.exit(f"--model must be one of {', '.join(tuple(models.MODELS))}, got {config.model!r}")
    if config.device not in ("cpu", "gpu"):
        sys.exit(f"--device must be cpu or gpu, got {config.device!r}")
    if config.loss == "auto":
        config.loss = "ce"
    if config.loss not in ("ce", "sampled", "bce"):
        sys.exit(f"--loss must be auto, ce, sampled or bce, got {config.loss!r}")
    if config.loss == "bce" and config.model in BIDIRECTIONAL:
        sys.exit("--loss bce is SASRec's loss; bidirectional models use ce or sampled")
    for name in ("mask_prob", "mask_last", "random_window"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            sys.exit(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(config, name)}")
    if not 0.0 <= config.ema < 1.0:
        sys.exit(f"--ema must be in [0, 1) (0 = off; e.g. 0.998), got {config.ema}")
    if config.max_minutes < 0:
        sys.exit(f"--max-minutes must be >= 0 (0 = no limit), got {config.max_minutes}")
    if config.eval not in ("both", "full", "sampled", "none"):
        sys.exit(f"--eval must be both, full, sampled or none, got {config.eval!r}")
    if config.conv < 0:
        sys.exit(f"--conv is a convolution width (0 = off, e.g. 4), got {config.conv}")
    model_kwargs(config)  # flags the model does not take are refused here, before any work
    if not config.out:
        config.out = os.path.join("runs", config.model)
    return config


# model argument -> (its flag, its value from the config or None when the flag is not set)
def _model_flags(config: Config) -> dict:
    return {
        "dim": ("--dim", config.dim or None),
        "num_heads": ("--heads", config.heads or None),
        "dropout": ("--dropout", config.dropout if config.dropout >= 0 else None),
        "mask_prob": ("--mask-prob", config.mask_prob if config.model in BIDIRECTIONAL else None),
        "conv": ("--conv", config.conv or None),
        "learn_decay": ("--fixed-decay", False if config.fixed_decay else None),
    }


def model_kwargs(config: Config) -> dict:
    """Keyword arguments of the model class from the flags that are set; a set flag the
    class does not take (``--heads`` for Hydra, one head per feature) ends the run."""
    accepted = inspect.signature(models.MODELS[config.model]).parameters
    kwargs = {"max_len": config.max_len, "num_layers": config.layers}
    for name, (flag, value) in _model_flags(config).items():
        if value is None:
            continue
        if name not in accepted:
            sys.exit(f"{flag} does not apply to --model {config.model}; leave it out")
        kwargs[name] = value
    return kwargs


# ------------------------------------------------------------------ checkpoints
# Not taken from the checkpoint by --resume: the settings of one invocation, and the folder
# the checkpoint is read from (a run folder copied elsewhere goes on in its new place).
NOT_RESUMED = ("resume", "max_minutes", "progress", "out")


def checkpoint_path_of(config: Config) -> Path:
    return Path(config.out) / "checkpoint.npz"


def read_checkpoint(config: Config) -> dict:
    """The training checkpoint in --out, for --resume (one line and exit when there is none)."""
    path = checkpoint_path_of(config)
    if not path.exists():
        sys.exit(f"--resume: no checkpoint at {path}")
    return checkpoint.load(path)


def resumed_config(config: Config, given: set[str], saved: dict) -> Config:
    """Every flag not on the command line takes the value the run was trained with (its
    config is in the checkpoint ``saved``), so ``--out DIR --resume`` continues the run
    as it was; flags on the command line win. A checkpoint without a saved config
    keeps ``config``."""
    run_config = saved["state"].get("config")
    if not run_config:
        return config
    names = {f.name for f in dataclasses.fields(Config)}
    kept = {name: value for name, value in run_config.items()
            if name in names and name not in given and name not in NOT_RESUMED}
    return validate(dataclasses.replace(config, **kept))


def write_json_atomically(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


CHECKPOINT_VERSION = 2  # 2: library RNGs reseeded per epoch, so a resumed run is exact


def epoch_seed(seed: int, epoch: int) -> int:
    """The library generators' seed for ``epoch`` (dropout masks, sampled negatives).

    Reseeding at every epoch start, instead of checkpointing the generators, makes an
    epoch's random numbers depend only on (seed, epoch) on every backend (CuPy's
    generator state cannot be saved), so a run resumed after epoch k is exactly the
    run that never stopped."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def save_training_state(path: Path, model, optimizer, ema, state: dict, rng) -> None:
    checkpoint.save({"version": CHECKPOINT_VERSION,
                     "model": model.state_dict(), "optim": optimizer.state_dict(),
                     "ema": ema.state_dict() if ema else None,
                     "state": state, "rng": rng.bit_generator.state}, path)


def restore_training_state(saved: dict, model, optimizer, rng) -> dict:
    """Weights, Adam state and RNG state from a checkpoint tree; returns the loop's state."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optim"])
    rng.bit_generator.state = saved["rng"]
    return saved["state"]


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


# ----------------------------------------------------------------------- training
def build(config: Config, num_items: int):
    model = models.build_model(config.model, num_items, **model_kwargs(config)).to(config.device)
    optimizer = optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
                           weight_decay=config.weight_decay, decoupled_weight_decay=True)
    return model, optimizer


def epoch_batches(config: Config, split, model, rng):
    if config.model in BIDIRECTIONAL:
        return data.cloze_batches(split, config.batch_size, config.max_len, rng,
                                  mask_token=model.mask_token, mask_prob=config.mask_prob,
                                  mask_last_prob=config.mask_last,
                                  random_window_prob=config.random_window)
    num_negatives = config.negatives if config.loss == "sampled" else 1
    return data.causal_batches(split, config.batch_size, config.max_len, rng, num_negatives=num_negatives,
                               random_window_prob=config.random_window)


def train_one_epoch(config, epoch, model, optimizer, ema, batches) -> tuple[float, float, int]:
    """Returns (mean loss, training seconds, steps). The loss is read back from the
    device only every few steps, so the GPU is not synchronised on every step."""
    model.train()
    xp = backend.xp_for_device(config.device)
    total = min(len(batches), config.max_steps) if config.max_steps else len(batches)
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", leave=False, disable=not config.progress)
    loss_sum, steps, pending = 0.0, 0, []
    start = time.perf_counter()
    for batch in bar:
        optimizer.zero_grad()
        loss = model.loss(batch, loss=config.loss, num_negatives=config.negatives)
        loss.backward()
        optimizer.step()
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
    mask_token = model.mask_token if config.model in BIDIRECTIONAL else None
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
    config, given = parse_args(sys.argv[1:] if argv is None else argv)
    saved = None
    if config.resume:
        saved = read_checkpoint(config)  # read once: the run's flags, then its weights
        config = resumed_config(config, given, saved)
    with stop_signals_save_checkpoints():
        return train(config, saved)


def wall_clock() -> float:
    """Seconds on a monotonic clock (one function, so a test can stand in a fake clock)."""
    return time.monotonic()


def train(config: Config, saved: dict | None = None) -> dict:
    """Trains (continuing from the checkpoint tree ``saved`` if given), evaluates, writes
    metrics.json and returns its contents."""
    started = wall_clock()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    th.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    try:
        path = config.data or str(data.download_ml1m())
    except data.DownloadError as error:
        sys.exit(f"error: {error}")
    split = data.leave_one_out(data.load_dataset(path))
    model, optimizer = build(config, split.num_items)
    print(f"{config.model}: {model.num_parameters():,} parameters, {split.num_users} users, "
          f"{split.num_items} items, device {config.device}, loss {config.loss}")

    state = {"epochs_done": 0, "best_ndcg": -1.0, "best_epoch": 0, "bad_validations": 0,
             "history": [], "train_seconds": 0.0, "train_steps": 0}
    checkpoint_path = checkpoint_path_of(config)
    if saved is not None:
        try:
            state = restore_training_state(saved, model, optimizer, rng)
        except (KeyError, ValueError) as error:  # another model, size or optimizer
            sys.exit(f"--resume: {checkpoint_path} does not fit this {config.model} "
                     f"({error}); resume with the flags the run was trained with")
        print(f"resumed after epoch {state['epochs_done']} (best valid NDCG@10 "
              f"{state['best_ndcg']:.4f} at epoch {state['best_epoch']})")
        for name in ("lr", "weight_decay"):  # the command line wins over the checkpoint
            previous, wanted = getattr(optimizer, name), getattr(config, name)
            if previous != wanted:
                print(f"--{name.replace('_', '-')} {wanted} replaces the checkpoint's {previous}")
                setattr(optimizer, name, wanted)

    ema = moving_average(config, model, saved)
    state["config"] = dataclasses.asdict(config)  # what --resume takes flags from
    if saved is None:  # epoch 0, so an interrupted first epoch can be resumed too
        save_training_state(checkpoint_path, model, optimizer, ema, state, rng)
    key = "full/NDCG@10" if config.eval in ("both", "full") else "sampled/NDCG@10"
    stop_reason, longest_epoch = "epochs", 0.0
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
            th.manual_seed(epoch_seed(config.seed, epoch))
            loss, seconds, steps = train_one_epoch(config, epoch, model, optimizer, ema,
                                                   epoch_batches(config, split, model, rng))
            record = {"epoch": epoch, "loss": loss, "seconds": seconds}
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
            save_training_state(checkpoint_path, model, optimizer, ema, state, rng)
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
    write_json_atomically(out / "metrics.json", result)
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
    names = ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
    print(f"{'protocol':<10}" + "".join(f"{n:>9}" for n in names))
    for protocol in ("full", "sampled"):
        if f"{protocol}/HR@10" in test:
            print(f"{protocol:<10}" + "".join(f"{test[f'{protocol}/{n}']:>9.4f}" for n in names))


if __name__ == "__main__":
    main()
