"""Errors that users can fix themselves.

Anything raised as :class:`LvcgError` is printed as one line on stderr and the process exits
with code 2 (see :func:`lvcg_cli.main.run`); every other exception is a bug and keeps its
traceback under ``LVCG_DEBUG=1``.
"""

from __future__ import annotations

from pathlib import Path


class LvcgError(Exception):
    """A known, user-fixable problem: bad settings, bad input file, missing data."""

    exit_code = 2


class SettingsError(LvcgError):
    """A setting is unknown or has an invalid value."""


class RecordError(LvcgError):
    """One input record cannot be read or is not usable as an ECG.

    Batch jobs catch this per record, report it and go on; single-record commands exit with it.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataLayoutError(LvcgError):
    """A dataset root does not look like the release it claims to be."""
