"""The library's exception types: mistakes a user can fix, each with a one-line message.

Every type here derives from :class:`TinyHydraError` and says, in its message, what
is wrong, where (a file and line, a flag, a path) and what to do. A command-line
script turns exactly these into one line on stderr and an exit status
(:func:`tinyhydra.cli.one_line_errors`); any other exception is a bug and keeps its
traceback.

Exit statuses: 2 for a command that asks for something impossible (a bad flag, a
device that is not there), 1 for files that cannot be used (data, checkpoints,
downloads).
"""
from __future__ import annotations


class TinyHydraError(Exception):
    """A mistake the user can fix; ``exit_status`` is what a script exits with."""

    exit_status = 1


class UsageError(TinyHydraError, ValueError):
    """A flag or argument is wrong or conflicts with another one; names the flag."""

    exit_status = 2


class BackendError(TinyHydraError, RuntimeError):
    """The GPU backend is asked for but cannot be used (no CuPy, no driver, no GPU)."""

    exit_status = 2


class DataFormatError(TinyHydraError, ValueError):
    """A data file cannot be read or does not have the expected layout; names the file
    and, when one is to blame, the line."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class DownloadError(TinyHydraError, RuntimeError):
    """The dataset could not be downloaded or did not pass its checksum."""


class CheckpointError(TinyHydraError, ValueError):
    """A checkpoint file is missing, unreadable, of another version or of another model."""
