"""Atomic writes: a file is either absent, the old version, or the complete new version.

Every checkpoint, cache chunk and result file goes through here, so a killed job never leaves a
half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file keeps the final suffix so that writers which key on it (numpy, torch,
    matplotlib) behave the same.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would (umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    and the row's keys are not changed: new keys must already be in ``columns``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            header: list[str] | None = None
            if path.exists() and path.stat().st_size > 0:
                with open(path, newline="") as handle:
                    header = next(csv.reader(handle), None)
            fieldnames = header or list(columns or row.keys())
            with open(path, "a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
                if header is None:
                    writer.writeheader()
                writer.writerow(dict(row))
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
