"""trainer.cli: a dataclass becomes a parser; the flags given are known; mistakes are UsageErrors."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tinyhydra.errors import UsageError
from trainer import cli


@dataclass
class Example:
    batch_size: int = cli.flag(128, "sequences per step")
    lr: float = cli.flag(1e-3, "learning rate")
    kind: str = cli.flag("a", "which kind", choices=("a", "b"))
    progress: bool = cli.flag(True, "progress bars")
    lengths: list[int] = cli.flag([64, 128], "sequence lengths")


def test_defaults_and_the_set_of_flags_given():
    config, given = cli.parse_config(Example, [])
    assert config == Example() and given == set()
    config, given = cli.parse_config(Example, ["--batch-size", "64", "--lengths", "1", "2", "3"])
    assert (config.batch_size, config.lengths, config.lr) == (64, [1, 2, 3], 1e-3)
    assert given == {"batch_size", "lengths"}
    assert Example().lengths is not Example().lengths  # a list default is not shared


@pytest.mark.parametrize("argv, expected", [
    (["--progress"], True), (["--progress", "false"], False), (["--progress", "0"], False),
    (["--progress", "true"], True), (["--no-progress"], False),
])
def test_bool_flags(argv, expected):
    config, given = cli.parse_config(Example, argv)
    assert config.progress is expected and given == {"progress"}


@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
    (["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
    (["--lr=-inf"], "expected a finite number"),
    (["--lr", "fast"], "expected a number, got 'fast'"),
    (["--kind", "c"], "invalid choice: 'c'"),
    (["--progress", "maybe"], "expected true or false"),
    (["--batch"], "unrecognized arguments: --batch"),  # no abbreviations
    (["--lengths"], "expected at least one argument"),
])
def test_mistakes_are_one_line_usage_errors(argv, words):
    with pytest.raises(UsageError) as info:
        cli.parse_config(Example, argv)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert cli.exit_status(info.value) == 2


def test_help_shows_defaults_and_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.parse_config(Example, ["--help"], description="An example.")
    text = capsys.readouterr().out
    assert stop.value.code == 0 and text.count("An example.") == 1
    assert "sequences per step (default: 128)" in text and "{a,b}" in text
    assert "(default: [64, 128])" in text and "--no-progress" not in text


def test_one_line_errors_turns_library_errors_into_exit_statuses(capsys):
    with pytest.raises(SystemExit) as stop, cli.one_line_errors():
        raise UsageError("--x 3: must be 2\n(second line)")
    assert stop.value.code == 2 and capsys.readouterr().err == "error: --x 3: must be 2 (second line)\n"
    with pytest.raises(KeyError), cli.one_line_errors():  # not a library error: a bug, traceback kept
        raise KeyError("bug")
