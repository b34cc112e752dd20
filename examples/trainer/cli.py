"""One command-line parser for every script: argparse built from a dataclass.

    @dataclass
    class Config:
        epochs: int = cli.flag(200, "passes over the training data")
        model: str = cli.flag("sasrec", "which model", choices=("sasrec", "bert4rec"))

    config, given = cli.parse_config(Config, sys.argv[1:], description=__doc__)

Every field becomes ``--field-name`` (``batch_size`` -> ``--batch-size``) with its
type, default and choices in ``--help``. A bool field is ``--flag`` (true),
``--flag false`` or ``--no-flag``; a ``list[int]`` field takes several values.
Floats must be finite. ``given`` is the set of field names that were on the command
line, so a resumed run can take every other value from its checkpoint.

A mistake raises :class:`~tinyhydra.errors.UsageError` instead of printing argparse's
usage; :func:`one_line_errors` turns it, and every other library error, into one
line on stderr and the error's exit status.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys

from tinyhydra.errors import BackendError, TinyHydraError, UsageError


def flag(default, help, choices=None, positional: bool = False):
    """A dataclass field that :func:`parse_config` turns into a flag with this help text
    (``positional``: an argument without a flag name, e.g. a list of files). ``help`` and
    ``choices`` may be functions of no argument, called when the parser is built, so that
    a flag listing a registry (``--model``, ``--data-format``) lists what is registered then."""
    metadata = {"help": help, "positional": positional}
    if choices is not None:
        metadata["choices"] = choices if callable(choices) else tuple(choices)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


_TYPES = {"int": int, "float": _finite_float, "str": str}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit 2 itself
        raise UsageError(f"{message} (see --help)")


def _kind(field) -> str:
    """The field's type as text ("int", "list[int]", ...), also under ``from __future__ import annotations``."""
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return kind.replace(" | None", "")


def _called(value):
    return value() if callable(value) else value


def build_parser(config_class, description: str = "") -> argparse.ArgumentParser:
    """The parser of ``config_class``'s fields; flags left out are absent from the result
    (``--batch-size`` fills ``batch_size``: argparse turns dashes into underscores)."""
    parser = _Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    for field in dataclasses.fields(config_class):
        positional = field.metadata.get("positional", False)
        name = field.name if positional else "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        text, choices = (_called(field.metadata.get(key)) for key in ("help", "choices"))
        text = (text or "").replace("%", "%%") + ("" if positional else f" (default: {default!r})")
        kind = _kind(field)
        if kind == "bool":
            parser.add_argument(name, nargs="?", const=True, type=_boolean, metavar="true|false",
                                help=text)
            parser.add_argument("--no-" + name[2:], action="store_const", const=False,
                                dest=field.name, help=argparse.SUPPRESS)
        elif kind.startswith("list["):
            parser.add_argument(name, nargs="+", type=_TYPES[kind[5:-1]], help=text)
        else:
            parser.add_argument(name, type=_TYPES[kind], choices=choices, help=text)
    return parser


def parse_config(config_class, argv, description: str = ""):
    """``(config, given)``: a ``config_class`` from the flags in ``argv`` over its defaults,
    and the set of field names the flags gave. Raises UsageError for a bad flag."""
    given = vars(build_parser(config_class, description).parse_args(argv))
    return config_class(**given), set(given)


# exit statuses: 2 for a command that asks for something impossible (a bad flag, a device that
# is not there), 1 for files that cannot be used (data, checkpoints, downloads)
EXIT_STATUS = {UsageError: 2, BackendError: 2}


def exit_status(error: TinyHydraError) -> int:
    """The exit status for a library error: its type's entry in EXIT_STATUS, else 1."""
    return next((status for kind, status in EXIT_STATUS.items() if isinstance(error, kind)), 1)


@contextlib.contextmanager
def one_line_errors():
    """``with one_line_errors():`` a library error (:class:`~tinyhydra.errors.TinyHydraError`)
    ends the program with its message as one line on stderr and its exit status (2 for
    usage, 1 for files); any other exception is a bug and keeps its traceback."""
    try:
        yield
    except TinyHydraError as error:
        print("error: " + " ".join(str(error).splitlines()), file=sys.stderr)
        raise SystemExit(exit_status(error)) from None
