"""The settings of a training run: every flag of ``examples/train.py``, checked.

:class:`Config` is read from the command line by :func:`trainer.cli.parse_config`
(``--batch-size 64`` sets ``batch_size``) and saved in every checkpoint, so that
``--resume`` continues a run with the values it was trained with.
:func:`validate` rejects every value that cannot work, naming the flag, before
anything is read or trained. ``examples/results_table.py`` imports the defaults from
here too.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

from tinyhydra.errors import UsageError
from tinyhydra.rec import models
from tinyhydra.rec.data import DATA_FORMATS, DATASETS
from tinyhydra.rec.registry import MODELS

from .cli import flag

LOSSES = ("auto", *models.LOSSES)
EVALS = ("both", "full", "sampled", "none")
LR_SCHEDULES = ("constant", "cosine")
DEFAULT_MAX_LEN = 200  # --max-len of a --data file that names no --dataset
SAMPLED_EVAL_NEGATIVES = 100  # the sampled protocol ranks each target among this many items


def bidirectional(model: str) -> bool:
    """Whether the registered ``model`` is bidirectional (BERT4Rec-style: cloze training, the
    bidirectional recipe); an unknown name is not."""
    return model in MODELS and not MODELS[model].causal


def data_format_choices() -> tuple[str, ...]:
    return ("auto", *DATA_FORMATS)


def model_help() -> str:
    """The --model help: the registered models by direction."""
    names = {direction: ", ".join(name for name, entry in MODELS.items() if entry.direction == direction)
             for direction in ("causal", "bidirectional")}
    return (f"causal (SASRec-style: {names['causal']}) or bidirectional (BERT4Rec-style: "
            f"{names['bidirectional']}) model; the default is the best measured, at O(L*D)")


@dataclass
class Config:
    dataset: str = flag("ml-1m", "named data set: downloaded, checked and cached when --data is "
                                 "not given; with --data, the data set that file holds",
                        choices=DATASETS)
    data: str = flag("", "a local data file (layout: --data-format); '' = the --dataset, downloaded")
    data_format: str = flag("auto", "layout of --data; auto = detected from the file",
                            choices=data_format_choices)
    model: str = flag("hydrarec-uni-decay", model_help, choices=lambda: tuple(MODELS))
    device: str = flag("cpu", "gpu needs CuPy", choices=("cpu", "gpu"))
    epochs: int = flag(100, "at most this many passes over the training data (bidirectional "
                            "models: 150)")
    batch_size: int = flag(128, "sequences per step")
    max_len: int = flag(0, "items per training and evaluation sequence; 0 = the data set's "
                           "default (200 for MovieLens, 50 for Beauty)")
    dim: int = flag(0, "embedding size; 0 = the model's default (SASRec 50, BERT4Rec 64)")
    layers: int = flag(2, "transformer blocks")
    heads: int = flag(0, "attention heads (must divide the dim); 0 = the model's default "
                         "(SASRec 1, BERT4Rec 2, Hydra one per feature)")
    dropout: float = flag(-1.0, "dropout probability in [0, 1); < 0 = the model's default "
                                "(SASRec 0.2, BERT4Rec 0.1)")
    head_norm: str = flag("global", "hydrarec-uni/-bi with --heads H: where the cosine feature "
                                    "map normalises, over all features (global, as Hydra) or per head",
                          choices=("global", "per_head"))
    conv: int = flag(0, "> 0: a depthwise convolution of this width (e.g. 4) before each "
                        "attention's Q/K/V projections; causal for causal models")
    fixed_decay: bool = flag(False, "*-decay models: keep the initial half-lives (1 .. max_len) "
                                    "instead of learning them")
    mask_prob: float = flag(0.2, "BERT4Rec cloze masking probability")
    mask_last: float = flag(0.0, "probability of also masking a sequence's last item (cloze; "
                                 "bidirectional models: 1)")
    random_window: float = flag(1.0, "probability that a sequence longer than max_len trains on "
                                     "a random window of it instead of its last items")
    lr: float = flag(1e-3, "Adam learning rate")
    lr_schedule: str = flag("constant", "constant, or cosine: linear warm-up over --warmup-steps, then "
                                        "half a cosine from --lr down to 0 at the last step of --epochs "
                                        "(so --resume with other --epochs reshapes the curve)",
                            choices=LR_SCHEDULES)
    warmup_steps: int = flag(0, "--lr-schedule cosine: steps of linear warm-up")
    weight_decay: float = flag(0.0, "decoupled weight decay")
    ema: float = flag(0.998, "> 0: validate and keep a moving average of the weights with this "
                             "decay; 0 = off")
    loss: str = flag("auto", "auto = ce (full softmax cross-entropy); sampled = cross-entropy "
                             "over --negatives sampled items; bce = SASRec's one-negative loss",
                     choices=LOSSES)
    negatives: int = flag(256, "negatives per position for --loss sampled")
    seed: int = flag(42, "seed of every random number of the run")
    eval: str = flag("both", "validation and test protocols: full ranking, 100 sampled "
                             "negatives, both or none", choices=EVALS)
    eval_every: int = flag(2, "validate every N epochs")
    patience: int = flag(10, "stop after this many validations without a better NDCG@10")
    max_steps: int = flag(0, "> 0: at most this many steps per epoch (smoke tests)")
    max_minutes: float = flag(0.0, "> 0: start no epoch that would end past this wall time")
    out: str = flag("", "folder of the run; '' = runs/<model>")
    resume: bool = flag(False, "continue the run in --out from its checkpoint")
    overwrite: bool = flag(False, "start over in an --out that already holds a run")
    progress: bool = flag(True, "progress bars")


# The default recipe is the one that measured best under the same budget (docs/results.md,
# the decay grid): random training windows, weight averaging, validation every 2 epochs and
# patience 10 (the defaults above, the causal recipe); bidirectional models also mask the
# last item of every cloze instance and train up to 150 epochs. A flag on the command line wins.
BIDIRECTIONAL_RECIPE = {"epochs": 150, "mask_last": 1.0}


def with_recipe(config: Config, given: set[str]) -> Config:
    """``config`` with its direction's recipe for every recipe flag not in ``given``."""
    if bidirectional(config.model):
        for name, value in BIDIRECTIONAL_RECIPE.items():
            if name not in given:
                setattr(config, name, value)
    return config


def model_default(model: str, argument: str):
    """The default of ``argument`` (e.g. "dim") in the constructor of the class of ``model``
    (a key of ``MODELS``) or, when that class passes it on, of the first base class that names it."""
    for klass in MODELS[model].model_class.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(argument)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    raise KeyError(f"{model} has no default for {argument!r}")


def model_kwargs(config: Config) -> dict:
    """Keyword arguments of the model class from the flags that are set; a set flag the
    class does not take (``--heads`` for decayed Hydra: one head per feature) is a UsageError."""
    accepted = inspect.signature(MODELS[config.model].model_class).parameters
    flags = {  # model argument -> (its flag, its value, or None when the flag is not set)
        "dim": ("--dim", config.dim or None),
        "num_heads": ("--heads", config.heads or None),
        "dropout": ("--dropout", config.dropout if config.dropout >= 0 else None),
        "mask_prob": ("--mask-prob", config.mask_prob if bidirectional(config.model) else None),
        "conv": ("--conv", config.conv or None),
        "head_norm": ("--head-norm", config.head_norm if config.head_norm != "global" else None),
        "learn_decay": ("--fixed-decay", False if config.fixed_decay else None),
    }
    kwargs = {"max_len": config.max_len, "num_layers": config.layers}
    for name, (flag_name, value) in flags.items():
        if value is None:
            continue
        if name not in accepted:
            raise UsageError(f"{flag_name} does not apply to --model {config.model}; leave it out")
        kwargs[name] = value
    return kwargs


def _require(condition: bool, flag_name: str, value, rule: str) -> None:
    if not condition:
        raise UsageError(f"--{flag_name.replace('_', '-')} {value}: {rule}")


def validate(config: Config) -> Config:
    """``config`` with ``loss`` auto resolved and ``out`` defaulted; raises UsageError
    naming the flag for any value that cannot work (NaN and inf never get here:
    the parser refuses them)."""
    for name in ("epochs", "batch_size", "negatives", "eval_every", "patience"):
        _require(getattr(config, name) >= 1, name, getattr(config, name), "must be >= 1")
    _require(config.dataset in DATASETS or (config.data and not config.dataset), "dataset", config.dataset,
             f"must be one of {', '.join(DATASETS)} (or give a local file with --data)")
    _require(config.data_format in data_format_choices(), "data_format", config.data_format,
             f"must be auto or one of {', '.join(DATA_FORMATS)}")
    _require(config.data_format == "auto" or config.data, "data_format", config.data_format,
             f"is the layout of a --data file; --dataset {config.dataset} has its own, leave it out")
    if config.max_len == 0:
        config.max_len = DATASETS[config.dataset].max_len if config.dataset else DEFAULT_MAX_LEN
    for name in ("max_len", "dim", "layers", "heads", "conv", "seed", "max_steps", "max_minutes", "lr",
                 "weight_decay", "warmup_steps"):
        _require(getattr(config, name) >= 0, name, getattr(config, name), "must be >= 0")
    for name in ("mask_prob", "mask_last", "random_window"):
        _require(0.0 <= getattr(config, name) <= 1.0, name, getattr(config, name), "must be in [0, 1]")
    _require(config.dropout < 1.0, "dropout", config.dropout,
             "must be in [0, 1) (or < 0 for the model's default)")
    _require(config.lr_schedule in LR_SCHEDULES, "lr_schedule", config.lr_schedule,
             f"must be one of {', '.join(LR_SCHEDULES)}")
    _require(config.warmup_steps == 0 or config.lr_schedule == "cosine", "warmup_steps", config.warmup_steps,
             "warms up a schedule: add --lr-schedule cosine")
    _require(config.ema < 1.0, "ema", config.ema, "must be in [0, 1) (0 = off; e.g. 0.998)")
    _require(config.ema >= 0.0, "ema", config.ema, "must be in [0, 1) (0 = off; e.g. 0.998)")
    _require(config.model in MODELS, "model", config.model, f"must be one of {', '.join(MODELS)}")
    _require(config.loss in LOSSES, "loss", config.loss, f"must be one of {', '.join(LOSSES)}")
    _require(config.eval in EVALS, "eval", config.eval, f"must be one of {', '.join(EVALS)}")
    is_bidirectional = bidirectional(config.model)
    _require(not (is_bidirectional and config.loss == "bce"), "loss", config.loss,
             "is SASRec's loss; bidirectional models use ce or sampled")
    _require(not (is_bidirectional and config.max_len < 2), "max_len", config.max_len,
             "must be >= 2 for a bidirectional model (its last position is the [MASK] to predict)")
    dim = config.dim or model_default(config.model, "dim")
    heads = config.heads or model_default(config.model, "num_heads") or dim  # None: H = D
    _require(dim % heads == 0, "heads", heads, f"must divide the dim {dim}")
    _require(config.head_norm in ("global", "per_head"), "head_norm", config.head_norm, "must be global or per_head")
    _require(config.head_norm == "global" or heads < dim, "head_norm", config.head_norm,
             f"needs --heads below the dim {dim}: with one feature per head it is sign(x), which passes "
             "no gradient to the queries and keys")
    model_kwargs(config)  # a set flag that the model does not take is refused here
    if config.resume and config.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite starts it over: "
                         "give one of them")
    if config.loss == "auto":
        config.loss = "ce"
    if not config.out:
        config.out = os.path.join("runs", config.model)
    return config
