"""Errors that users can fix themselves.

Anything raised as :class:`LvcgError` is printed as one line on stderr and the process exits
with code 2 (see :func:`lvcg_cli.main.run`), and so is an operating-system error (:class:`OSError`:
permissions, a read-only or full disk, a file where a folder should be), said by
:func:`describe_os_error` as the path and the cause. Every other exception is a bug and keeps its
traceback under ``LVCG_DEBUG=1``.
"""

from __future__ import annotations

import errno as _errno
import os
from pathlib import Path


def first_line(exc: BaseException | str, empty: str | None = None, limit: int | None = None) -> str:
    """The first non-empty line of an error (or of a text), for one-line messages.

    Library exceptions often run to several lines (advice, tracebacks of their own) or say nothing
    at all; an empty message becomes ``empty``, else the exception's type name (``OSError``).
    With ``limit``, a long line is cut to that many characters.
    """
    text = exc if isinstance(exc, str) else str(exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit] if limit else line.strip()
    if empty is not None:
        return empty
    return "error" if isinstance(exc, str) else type(exc).__name__


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


class OutputError(LvcgError):
    """An output could not be written (read-only or full disk, a folder in the way ...).

    Raised by :mod:`lvcg_cli.atomic` after removing its temporary file, so nothing half-written is
    left behind. Not a :class:`RecordError`: batch jobs stop on it instead of skipping records,
    since every later write would fail the same way.
    """

    def __init__(self, path: str | Path, cause: str, errno: int | None = None):
        self.path = str(path)
        self.cause = cause
        self.errno = errno
        super().__init__(f"{self.path}: cannot write: {cause}")

    def __reduce__(self):  # keeps the fields across process pools (the default passes only args)
        return (type(self), (self.path, self.cause, self.errno))


_OS_CAUSES = {
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
    _errno.EROFS: "read-only file system",
    _errno.ENOSPC: "no space left on device",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EISDIR: "is a folder, not a file",
    _errno.ENOTDIR: "not a folder (a part of the path is a file)",
    _errno.ENOENT: "no such file or folder",
    _errno.EEXIST: "already exists",
    _errno.ENOTEMPTY: "folder is not empty",
    _errno.ENAMETOOLONG: "file name too long",
    _errno.EMFILE: "too many open files",
    _errno.ENFILE: "too many open files in the system",
    _errno.EIO: "input/output error (a failing disk or network file system)",
    _errno.EFBIG: "file too large for this file system",
    _errno.ELOOP: "too many levels of symbolic links",
    _errno.ETXTBSY: "file is busy",
    _errno.EXDEV: "cannot move across file systems",
}


def os_error_cause(exc: OSError) -> str:
    """The cause of an operating-system error in a few words (``no space left on device``)."""
    cause = _OS_CAUSES.get(exc.errno) if exc.errno is not None else None
    if exc.errno == _errno.EEXIST and exc.filename and os.path.isfile(exc.filename):
        cause = "exists as a file where a folder is needed"
    if cause is None:
        cause = first_line(exc.strerror or exc)
        cause = cause[:1].lower() + cause[1:]
    return cause


def describe_os_error(exc: OSError, path: str | Path | None = None) -> str:
    """``PATH: CAUSE`` for one line of output; the path is the error's own unless one is given."""
    where = path if path is not None else exc.filename
    if where is None:
        return os_error_cause(exc)
    if isinstance(where, bytes):
        where = os.fsdecode(where)
    return f"{where}: {os_error_cause(exc)}"
