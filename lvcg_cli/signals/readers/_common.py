"""What every format reader returns, and the small helpers the decoders share.

A reader turns one file into :class:`RawSignals`; :func:`lvcg_cli.signals.io.read_record` then
does the lead matching, unit conversion, NaN repair and lead derivation for every format alike,
so a DICOM file and a WFDB record of the same ECG become the same :class:`Record`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lvcg_cli import errors
from lvcg_cli.errors import RecordError

MAX_FILE_BYTES = 256 << 20
"""A resting or stress ECG file is at most tens of MB; larger inputs are refused before parsing."""


class RawSignals(NamedTuple):
    """One file's signals as stored: (T, C) samples in ``units``, labels as the file writes them."""

    samples: np.ndarray
    fs: float
    names: list[str]
    units: list[str]
    comments: list[str]
    meta: dict


def require(module: str, path: Path, what: str, extra: str = "clinical"):
    """Import an optional library, or a one-line install hint naming the file."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RecordError(
            path, f"reading {what} needs the {module} package: pip install 'lvcg[{extra}]'"
        ) from None


def read_bytes(path: Path) -> bytes:
    """The whole file, refusing absurd sizes with a one-line error."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RecordError(path, f"file too large for an ECG ({size >> 20} MB)")
        return path.read_bytes()
    except OSError as exc:
        raise RecordError(path, f"cannot open ({exc.strerror or exc})") from None


def first_line(exc: BaseException | str) -> str:
    """A reader library's exception as a short phrase (at most 160 characters) for a one-line error."""
    return errors.first_line(exc, limit=160)


def stack_leads(path: Path, leads: list[np.ndarray], what: str) -> np.ndarray:
    """(T, C) float64 from per-lead arrays that must all have the same, non-zero length."""
    lengths = {int(np.asarray(lead).size) for lead in leads}
    if not leads or lengths == {0}:
        raise RecordError(path, f"{what}: no samples")
    if len(lengths) != 1:
        raise RecordError(
            path, f"{what}: leads have different lengths ({', '.join(map(str, sorted(lengths)))})"
        )
    return np.stack([np.asarray(lead, dtype=np.float64) for lead in leads], axis=1)


def positive_rate(path: Path, value, what: str) -> float:
    """A sampling rate from the file, checked to be a finite positive number."""
    try:
        fs = float(value)
    except (TypeError, ValueError):
        raise RecordError(path, f"{what}: invalid sampling rate {value!r}") from None
    if not np.isfinite(fs) or fs <= 0:
        raise RecordError(path, f"{what}: invalid sampling rate {value!r}")
    return fs


def sex_comment(value: str | None) -> list[str]:
    """``sex: M``/``sex: F`` in the comment form :func:`lvcg_cli.signals.io` parses, or nothing."""
    key = (value or "").strip().lower()
    sex = {"m": "M", "male": "M", "1": "M", "f": "F", "female": "F", "2": "F"}.get(key)
    return [f"sex: {sex}"] if sex else []
