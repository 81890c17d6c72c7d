"""Run folders: one per run, never shared, never overwritten, never left empty by a failed start.

A run that names no folder gets ``<runs_dir>/<prefix><YYYYmmdd-HHMMSS>-<4 hex digits>``. The
time makes folders sort by start; the random suffix keeps runs started in the same second apart,
and the folder is *claimed* with ``mkdir`` (atomic: of two processes that draw the same name one
wins, the other draws again), so two runs never write into one folder.

A folder named by the user (``--out DIR`` or ``--run-id ID``) must be new or empty: a finished
run is never overwritten (``lvcg pretrain --resume`` continues one on purpose). Naming it both
ways at once is an error rather than one of them being silently ignored.

A run that fails before doing anything leaves nothing behind (its folder is removed); one that
fails after writing results keeps them, with a ``FAILED`` file saying why.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from lvcg_cli.atomic import write_text_atomic
from lvcg_cli.errors import LvcgError
from lvcg_cli.locks import LOCK_NAME

FAILED_FILE = "FAILED"
NOTHING_DONE = frozenset({"config.yaml", LOCK_NAME})
"""Files a run writes before it does any work: a folder holding only these (or empty files) did nothing."""


def timestamped_name(prefix: str = "", now: float | None = None) -> str:
    """``<prefix>20250131-140207-3fa9``: the local start time to the second and a random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def claim_new(parent: str | Path, prefix: str = "", attempts: int = 1000) -> Path:
    """Create and return a fresh, uniquely named run folder under ``parent``."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        path = parent / timestamped_name(prefix)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise LvcgError(f"{parent}: could not create a new run folder ({attempts} names taken)")


def claim_named(path: str | Path, hint: str) -> tuple[Path, bool]:
    """A run folder the user named: created if absent, accepted if empty, refused if it holds a run.

    Returns ``(path, created)``; ``hint`` ends the refusal (what to do instead).
    """
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise LvcgError(f"{path}: exists and is not a folder; {hint}")
        if any(item.name != LOCK_NAME for item in path.iterdir()):  # a lock left by a killed run is not a run
            raise LvcgError(f"{path}: run folder already exists; {hint}")
        return path, False
    path.mkdir(parents=True)
    return path, True


def check_one_location(run_id: str | None, out: str | Path | None) -> None:
    """``--run-id`` and ``--out`` both name the run folder; with both, one would be ignored."""
    if run_id is not None and out is not None:
        raise LvcgError(
            f"--run-id {run_id} and --out {out} both name the run folder (runs/ID or DIR); give one of them"
        )


def did_nothing(path: str | Path) -> bool:
    """Whether a run folder holds nothing but what a run writes before its work (or empty files)."""
    path = Path(path)
    if not path.is_dir():
        return True
    for item in path.rglob("*"):
        if item.is_dir():
            continue
        if item.name in NOTHING_DONE or item.stat().st_size == 0:
            continue
        return False
    return True


def abandon(path: str | Path, reason: str, *, created: bool = True) -> Path | None:
    """After a failure: remove a run folder that did nothing, else mark it ``FAILED`` with the reason.

    A folder that existed before the run (an empty ``--out`` the user made) is emptied, not
    removed. Returns the marker written, or None when the folder went away.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if did_nothing(path):
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for item in path.iterdir():
                if item.name == LOCK_NAME:  # its holder removes it on release
                    continue
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
        return None
    marker = path / FAILED_FILE
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    write_text_atomic(marker, f"{stamp} (pid {os.getpid()}): {reason.strip() or 'failed'}\n")
    return marker


def failure_reason(exc: BaseException) -> str:
    """One line for a ``FAILED`` marker."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
