"""Exclusive locks on the folders a run builds: prepared caches and run folders.

Two ``lvcg prepare-data`` runs into one output used to interleave their chunks and mark a cache
complete that held zeros. Now every writer of a folder first takes an exclusive ``flock`` on
``<folder>/.lvcg.lock``; a second writer either refuses at once with one line naming the holder
(pid, host, start time, command) or, where waiting is the right thing (ranks of one job building
the built-in data), waits for it.

Why ``flock`` on a file inside the folder:

* the kernel releases it when the holder dies, even by ``kill -9``, so there is never a stale
  lock to clean up by hand; the holder's details written into the file are only for the message;
* it belongs to the open file, which processes forked by the holder (a prepare-data pool)
  inherit: as long as any of them is alive the folder stays locked, so a rerun can never race a
  leftover worker;
* it works across hosts on NFS (Linux maps it to a POSIX lock). Where a file system has no
  locks at all the run goes on with a warning instead of failing.

The lock file is removed on release. A process that opened it just before (and so locked a file
no longer in the folder) notices that the inode changed and tries again.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lvcg_cli.errors import LvcgError

LOCK_NAME = ".lvcg.lock"
POLL_S = 0.5


class LockedError(LvcgError):
    """Another process is writing the same output."""

    def __init__(self, folder: str | Path, what: str, holder: dict | None):
        self.folder = str(folder)
        self.what = what
        self.holder = holder
        super().__init__(
            f"{folder}: another {what} is writing this folder ({describe_holder(holder)}); "
            "wait for it to finish or choose another output folder"
        )

    def __reduce__(self):
        return (type(self), (self.folder, self.what, self.holder))


def describe_holder(holder: dict | None) -> str:
    """``pid 123 on host, since 2026-01-01T10:00:00: lvcg prepare-data ...`` (or why it is unknown)."""
    if not holder:
        return "holder unknown"
    pid, host = holder.get("pid"), holder.get("host", "?")
    text = f"pid {pid} on {host}"
    if host == socket.gethostname() and isinstance(pid, int) and not process_alive(pid):
        text += " (gone; a process it started still holds the lock)"
    if holder.get("since"):
        text += f", since {holder['since']}"
    if holder.get("command"):
        text += f": {holder['command']}"
    return text


def process_alive(pid: int) -> bool:
    """Whether a process of this host exists (signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["lvcg", *sys.argv[1:]])[:300],
    }


def _read_holder(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _read_holder_patiently(fd: int, tries: int = 20, pause_s: float = 0.025) -> dict | None:
    """The holder's record; it writes it just after taking the lock, so an empty file is re-read
    for up to half a second before the refusal says the holder is unknown."""
    for _ in range(tries):
        holder = _read_holder(fd)
        if holder is not None:
            return holder
        time.sleep(pause_s)
    return _read_holder(fd)


def holder_of(folder: str | Path) -> dict | None:
    """Who is writing ``folder`` right now, as far as its lock file says (None: nobody, it seems).

    Only reads the file: taking even a shared lock to ask could make a writer starting at that
    instant refuse. The file exists while a writer holds the lock (it is removed on release); one
    left by a writer that died on this host is recognised by its dead pid.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        holder = _read_holder(fd)
    finally:
        os.close(fd)
    if holder is None:
        return {}
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not process_alive(pid):
        return None
    return holder


@contextlib.contextmanager
def exclusive(folder: str | Path, *, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if needed) for the ``with`` block.

    ``what`` names the job in the refusal (``prepare-data``). ``wait=False`` raises
    :class:`LockedError` at once when another process holds the lock; ``wait=True`` says once on
    stderr whom it waits for and waits.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _acquire(path, folder, what, wait)
    try:
        yield path
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # still ours: see the module doc for why this is safe
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire(path: Path, folder: Path, what: str, wait: bool) -> int | None:
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder_patiently(fd)
            os.close(fd)
            if not wait:
                raise LockedError(folder, what, holder) from None
            if not said:
                from lvcg_cli.console import info

                info(f"waiting for {describe_holder(holder)} to finish writing {folder}")
                said = True
            time.sleep(POLL_S)
            continue
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                from lvcg_cli.console import warn

                warn(
                    f"{folder}: this file system cannot lock files ({exc.strerror}); "
                    f"make sure no other {what} writes into this folder at the same time"
                )
                return None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file while we opened it: lock the new one
            os.close(fd)
            continue
        data = json.dumps(_holder_record()).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        return fd


__all__ = ["LOCK_NAME", "LockedError", "describe_holder", "exclusive", "holder_of"]
