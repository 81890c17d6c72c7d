"""Atomic writes: a file is either absent, the old version, or the complete new version.

Every checkpoint, cache chunk and result file goes through here, so a killed job never leaves a
half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lvcg_cli.errors import OutputError, os_error_cause


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file keeps the final suffix so that writers which key on it (numpy, torch,
    matplotlib) behave the same. An operating-system error while creating, writing, syncing or
    renaming it (read-only or full disk, a folder named like the output ...) removes the temporary
    file and becomes one :class:`~lvcg_cli.errors.OutputError` naming ``path`` and the cause.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would (umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if not _about_this_output(exc, path, tmp):
            raise  # e.g. an input the caller read inside the block: its own error says which
        raise output_error(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """An :class:`OutputError` for ``path`` from the operating-system error that stopped its write."""
    return OutputError(path, os_error_cause(exc), exc.errno)


def _about_this_output(exc: OSError, path: Path, tmp: Path | None) -> bool:
    """Whether an OSError raised while writing ``path`` is about that write (not some other file)."""
    names = {os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None}
    if not names:
        return True  # write()/fsync() on an open handle: no file name, and the handle is ours
    ours = {str(path), str(path.parent)} | ({str(tmp)} if tmp is not None else set())
    return bool(names & ours) or any(str(path).startswith(name.rstrip("/") + "/") for name in names)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def append_csv_row(path: str | Path, row: Mapping[str, Any], columns: Sequence[str] | None = None) -> None:
    """Append one row to a CSV, writing the header first if the file is new.

    An exclusive ``flock`` on a side lock file makes concurrent appends from several processes
    safe (each row lands whole, the header once). Columns are the union of the existing header
    and the row's keys are not changed: new keys must already be in ``columns``. The row is
    written with one ``write``; if that fails (full disk) the file is cut back to its old length,
    so it never ends in half a row, and the error is an :class:`OutputError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                _append_locked(path, row, columns)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise output_error(path, exc) from None


def _append_locked(path: Path, row: Mapping[str, Any], columns: Sequence[str] | None) -> None:
    header: list[str] | None = None
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), None)
    fieldnames = header or list(columns or row.keys())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames, extrasaction="ignore")
    if header is None:
        writer.writeheader()
    writer.writerow(dict(row))
    data = text.getvalue().encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
