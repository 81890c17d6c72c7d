"""From a record as read to what the model reads: the whole record at the model's rate and band,
then windows.

:func:`model_signal` is the one path (resample -> band-pass, over the whole record) that training
and every serving command share; :func:`model_window` crops one window (the cache, training) and
:func:`preprocess` is the two together. NaN repair
(:func:`lvcg_cli.signals.repair.repair_nonfinite`) runs once, when a record is read. Each step is a small function that works on a whole ``(leads, time)`` array at once. Amplitudes stay in mV: normalisation belongs to
:mod:`lvcg_cli.signals.model_input` (it depends on which leads are visible), so :func:`normalize`
lives here only as the shared implementation.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import signal as sps

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.leads import N_LEADS

if TYPE_CHECKING:
    from lvcg_cli.settings import DataSettings
    from lvcg_cli.signals.io import Record

HIGH_CORNER_NYQUIST_FRACTION = 0.9
"""The high corner is clipped to this fraction of Nyquist: a Butterworth corner at or above Nyquist
does not exist, and one just below it is numerically fragile."""


# --------------------------------------------------------------------------------------------
# resample and filter
# --------------------------------------------------------------------------------------------
def rational_factors(fs_in: float, fs_out: float, max_denominator: int = 1000) -> tuple[int, int]:
    """``(up, down)`` with ``fs_in * up / down == fs_out`` (exactly for rates with <= 3 decimals)."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be > 0 (got {fs_in}, {fs_out})")
    ratio = Fraction(fs_out).limit_denominator(max_denominator) / Fraction(fs_in).limit_denominator(
        max_denominator
    )
    ratio = ratio.limit_denominator(10 * max_denominator)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample along the last axis with a polyphase FIR (``scipy.signal.resample_poly``).

    The anti-aliasing filter is scipy's default Kaiser window; edges are padded by extending the
    end lines (``padtype="line"``) so a baseline offset does not ring at the window edges.
    """
    up, down = rational_factors(fs_in, fs_out)
    if up == down:
        return np.asarray(x)
    out = sps.resample_poly(x, up, down, axis=-1, padtype="line")
    return out.astype(np.result_type(x.dtype, np.float32), copy=False)


def bandpass_sos(fs: float, band: tuple[float, float] = (0.67, 40.0), order: int = 2) -> np.ndarray | None:
    """Second-order sections of a Butterworth band-pass (or high-/low-pass when a corner drops out).

    Designed once per (fs, band, order) and cached: every record of a data set shares it, and the
    design costs as much as filtering a 10-s record. Callers must not modify the returned array.
    The high corner is clipped to ``0.9 * Nyquist``; a corner of 0 (or a high corner clipped below
    the low one) removes that side. Returns ``None`` when nothing is left to filter.
    """
    return _design_bandpass(float(fs), float(band[0]), float(band[1]), int(order))


@functools.lru_cache(maxsize=32)
def _design_bandpass(fs: float, low: float, high: float, order: int) -> np.ndarray | None:
    nyquist = fs / 2.0
    high = min(high, HIGH_CORNER_NYQUIST_FRACTION * nyquist)
    has_low = low > 0
    has_high = high > (low if has_low else 0.0) and high < nyquist
    if has_low and has_high:
        sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    elif has_low:
        sos = sps.butter(order, low, btype="highpass", fs=fs, output="sos")
    elif has_high:
        sos = sps.butter(order, high, btype="lowpass", fs=fs, output="sos")
    else:
        return None
    return sos


def bandpass(
    x: np.ndarray, fs: float, band: tuple[float, float] = (0.67, 40.0), order: int = 2
) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis (``sosfiltfilt``: no delay, order doubled).

    Short inputs use the longest edge padding they allow instead of failing.
    """
    x = np.asarray(x)
    sos = bandpass_sos(fs, band, order)
    if sos is None or x.shape[-1] < 2:
        return x
    default_pad = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    padlen = min(default_pad, x.shape[-1] - 1)
    out = sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
    return out.astype(np.result_type(x.dtype, np.float32), copy=False)


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------
def fix_window(
    x: np.ndarray,
    n: int,
    policy: Literal["start", "center", "random"] = "start",
    pad: Literal["zero", "edge"] = "zero",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop or pad the last axis to exactly ``n`` samples.

    Longer inputs are cropped at the start, the centre (offset ``(T - n) // 2``) or a random offset
    drawn from ``rng`` (a fresh default generator when ``None``). Shorter inputs are padded at the
    end with zeros or with their last value (``edge``).
    """
    x = np.asarray(x)
    n_time = x.shape[-1]
    if n_time > n:
        if policy == "start":
            offset = 0
        elif policy == "center":
            offset = (n_time - n) // 2
        elif policy == "random":
            offset = int((rng or np.random.default_rng()).integers(0, n_time - n + 1))
        else:
            raise ValueError(f"unknown window policy {policy!r}")
        return x[..., offset : offset + n]
    if n_time < n:
        widths = [(0, 0)] * (x.ndim - 1) + [(0, n - n_time)]
        if pad == "zero" or n_time == 0:
            return np.pad(x, widths, mode="constant")
        if pad == "edge":
            return np.pad(x, widths, mode="edge")
        raise ValueError(f"unknown pad policy {pad!r}")
    return x


def split_windows(x: np.ndarray, n: int) -> np.ndarray:
    """Tile the last axis into consecutive full windows: (L, T) -> (T // n, L, n).

    The tail that does not fill a window is dropped; a record shorter than one window gives one
    window padded with zeros (so there is always at least one).
    """
    x = np.asarray(x)
    n_windows = x.shape[-1] // n
    if n_windows == 0:
        return fix_window(x, n, pad="zero")[None]
    tiled = x[..., : n_windows * n].reshape(*x.shape[:-1], n_windows, n)
    return np.moveaxis(tiled, -2, 0)


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------
def normalize(
    x: np.ndarray,
    visible: np.ndarray,
    mode: Literal["zscore", "none"] = "zscore",
    scope: Literal["record", "lead"] = "record",
    eps: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude-normalise a (12, T) mV array; returns ``(x_norm, scale)`` with ``x = x_norm * scale + mean``.

    ``record`` scope removes each lead's own mean and divides every lead by *one* scale: the
    standard deviation pooled over the ``visible`` leads only, so the scale carries no information
    about hidden leads and the linear relations between leads (III = II - I ...) survive.
    ``scale`` is then a 0-d array. ``lead`` scope divides each lead by its own standard deviation
    (``scale`` has shape (L,)); it breaks those relations and exists for comparison. A scale below
    ``eps`` (no visible signal) is replaced by 1. ``mode="none"`` returns ``x`` and a scale of 1.
    """
    x = np.asarray(x, dtype=np.float32)
    visible = np.asarray(visible, dtype=bool)
    if mode == "none":
        ones = np.ones((), np.float32) if scope == "record" else np.ones(x.shape[0], np.float32)
        return x, ones
    if mode != "zscore":
        raise ValueError(f"unknown normalisation mode {mode!r}")
    centred = x - x.mean(axis=-1, keepdims=True)
    if scope == "record":
        n_vis = int(visible.sum())
        if n_vis == 0 or x.shape[-1] == 0:
            scale = np.float32(1.0)
        else:
            rows = centred[visible]
            scale = np.float32(np.sqrt(np.einsum("ij,ij->", rows, rows, dtype=np.float64) / rows.size))
            if not scale > eps:
                scale = np.float32(1.0)
        return centred / scale, np.asarray(scale, dtype=np.float32)
    if scope == "lead":
        scale = centred.std(axis=-1).astype(np.float32)
        scale = np.where(scale > eps, scale, np.float32(1.0)).astype(np.float32)
        return centred / scale[:, None], scale
    raise ValueError(f"unknown normalisation scope {scope!r}")


# --------------------------------------------------------------------------------------------
# composition: the one path from a record to what the model reads
# --------------------------------------------------------------------------------------------
def model_signal(record: Record, data: DataSettings) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One record, whole length, as the model reads it: ``(signal (12, T') float32 mV at data.fs, present, flags)``.

    resample to ``data.fs`` (``resample_poly``) -> zero-phase band-pass (``data.bandpass``,
    ``data.filter_order``). Only present leads are filtered; absent leads stay exactly zero.
    Training (through the packed cache or a manifest), ``lvcg embed``, ``lvcg reconstruct``,
    ``lvcg probe`` and the Python API all call this function, so they cannot disagree; cutting
    windows is a separate step (:func:`model_window` for one crop, tiling for serving).

    NaN repair is not done here: it happened once, when the record was made
    (:func:`lvcg_cli.signals.io.read_record` or ``record_from_array``, with
    ``data.max_nan_gap_s``), so a record must arrive finite.
    """
    present = np.asarray(record.present, dtype=bool).copy()
    rows = np.flatnonzero(present)
    if not np.isfinite(record.signal[rows]).all():
        raise RecordError(
            record.path,
            "non-finite samples reached preprocessing; make records with read_record or record_from_array "
            "(they repair NaN gaps)",
        )
    n_out = max(int(round(record.n_samples * data.fs / record.fs)), 1)
    out = np.zeros((N_LEADS, n_out), dtype=np.float32)
    if rows.size:
        sub = resample(np.asarray(record.signal[rows], dtype=np.float32), record.fs, data.fs)
        sub = bandpass(sub, data.fs, data.bandpass, data.filter_order)
        out = np.zeros((N_LEADS, sub.shape[-1]), dtype=np.float32)
        out[rows] = sub
    return out, present, list(record.flags)


def model_window(
    signal: np.ndarray, data: DataSettings, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, bool]:
    """A :func:`model_signal` cut to one window of ``data.n_samples``: ``(window (12, n), padded)``.

    Cropped by ``data.window_policy`` (``random`` draws from ``rng``), padded by ``data.pad_policy``.
    """
    n = data.n_samples
    window = fix_window(signal, n, data.window_policy, data.pad_policy, rng)
    return np.asarray(window, dtype=np.float32), signal.shape[-1] < n


def preprocess(
    record: Record, data: DataSettings, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One record -> one window, as the packed cache stores it and training reads it.

    ``(signal (12, n) float32 mV at data.fs, present (12,) bool, flags)``: :func:`model_signal`
    then :func:`model_window` (flag ``padded`` when the record was shorter than the window).
    """
    signal, present, flags = model_signal(record, data)
    window, padded = model_window(signal, data, rng)
    return window, present, [*flags, "padded"] if padded else flags
