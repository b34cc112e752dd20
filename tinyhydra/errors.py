"""The library's exception types: mistakes a user can fix, each with a one-line message.

Every type here derives from :class:`TinyHydraError` and says, in its message, what
is wrong, where (a file and line, a flag, a path) and what to do. A program that uses the
library can turn exactly these into one line for its user (the training app does, in
``examples/trainer/cli.py``, with an exit status per type); any other exception is a bug and
keeps its traceback.
"""
from __future__ import annotations


class TinyHydraError(Exception):
    """A mistake the user can fix."""


class UsageError(TinyHydraError, ValueError):
    """A flag or argument is wrong or conflicts with another one; names the flag."""


class BackendError(TinyHydraError, RuntimeError):
    """The GPU backend is asked for but cannot be used (no CuPy, no driver, no GPU)."""


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
