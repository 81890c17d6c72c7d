"""A frozen copy of the per-sample data pipeline as it was before the speed work of issue #15.

The fast versions in ``lvcg_cli/signals/beats.py`` and ``lvcg_cli/signals/model_input.py`` must give
the same results (bit for bit) as this code on real records: ``tests/test_pipeline_speed.py``
compares them. Copied verbatim from commit 684212b (R-peak detection, beat segments, normalize,
make_sample; only the settings type hints were loosened); do not "improve" it: it is the reference.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage
from scipy import signal as sps

from lvcg_cli.signals.beats import BeatSegments
from lvcg_cli.signals.leads import N_LEADS

QRS_BAND_HZ = (5.0, 20.0)
ENVELOPE_WINDOW_S = 0.05
REFRACTORY_S = 0.25
T_WAVE_WINDOW_S = 0.4
T_WAVE_RATIO = 0.6
THRESHOLD_FRACTION = 0.5

BOUNDARY_FRACTION = 0.6
"""Beat k ends (and beat k+1 starts) at R_k + 0.6 * RR_k: the P wave of the next beat lies in its
last ~0.2 RR, the T wave of this one ends before ~0.45 RR."""

PSEUDO_BEAT_S = 1.0
"""Length of the fixed segments used when no R peak is found (and the nominal RR of a lone beat)."""


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """The multi-lead QRS energy envelope (T,) that peaks are found on (see the module docstring)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x).all(axis=1)]
    n_time = x.shape[-1]
    if x.shape[0] == 0 or n_time < 3:
        return np.zeros(n_time)
    high = min(QRS_BAND_HZ[1], 0.45 * fs)
    if high > QRS_BAND_HZ[0]:
        sos = sps.butter(2, [QRS_BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
        band = sps.sosfiltfilt(sos, x, axis=-1, padlen=min(3 * (2 * len(sos) + 1), n_time - 1))
    else:  # a rate too low for the QRS band: the derivative alone still favours the QRS
        band = x - x.mean(axis=-1, keepdims=True)
    deriv = np.gradient(band, axis=-1) * fs
    energy = np.einsum("lt,lt->t", deriv, deriv)
    width = max(int(round(ENVELOPE_WINDOW_S * fs)), 1)
    smoothed = ndimage.uniform_filter1d(energy, width, mode="nearest")
    return np.sqrt(np.maximum(smoothed, 0.0))


def detect_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices (sorted int64) of a (L, T) or (T,) signal in any unit, at rate ``fs``.

    Leads that are all zero (absent) or non-finite are ignored; an empty array is returned when no
    QRS-like energy is found.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_time = x.shape[-1]
    finite_rows = np.isfinite(x).all(axis=1) & (np.ptp(x, axis=-1) > 0 if n_time else False)
    x = x[finite_rows]
    if x.shape[0] == 0 or n_time < int(0.5 * fs):
        return np.zeros(0, dtype=np.int64)
    env = qrs_envelope(x, fs)
    refractory = max(int(round(REFRACTORY_S * fs)), 1)
    candidates, props = sps.find_peaks(env, distance=refractory, height=0.0)
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    heights = props["peak_heights"]
    reference = _typical_qrs_height(heights)
    if reference <= 0:
        return np.zeros(0, dtype=np.int64)
    keep = heights >= THRESHOLD_FRACTION * reference
    peaks, heights = candidates[keep], heights[keep]
    peaks, _ = _drop_t_waves(peaks, heights, fs)
    return peaks.astype(np.int64)


def _typical_qrs_height(heights: np.ndarray) -> float:
    """A robust height of a typical QRS peak of the envelope.

    Two estimates, the larger wins. (a) When beats are most of the candidates: the median of the
    larger half, capped by the 87.5th percentile so a few large artefacts cannot raise it.
    (b) When they are few (a lone beat, bradycardia among many small bumps, where (a) would sit on
    the noise): 0.3 x the median of the candidates above 0.3 of the largest. A lone artefact far
    larger than every beat is indistinguishable from a lone beat here and wins; that trade is
    deliberate (a window must never lose its only beat).
    """
    heights = np.sort(heights)[::-1]
    top = heights[heights >= np.quantile(heights, 0.5)]
    many = min(float(np.median(top)), float(np.quantile(heights, 0.875)))
    few = float(np.median(heights[heights >= 0.3 * heights[0]]))
    return max(many, 0.3 * few)


def _drop_t_waves(peaks: np.ndarray, heights: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove peaks that follow a kept beat within the T-wave window and are much weaker."""
    if peaks.size < 2:
        return peaks, heights
    window = T_WAVE_WINDOW_S * fs
    keep = np.ones(peaks.size, dtype=bool)
    last = 0
    for i in range(1, peaks.size):  # a loop over beats (tens), not samples
        if peaks[i] - peaks[last] < window and heights[i] < T_WAVE_RATIO * heights[last]:
            keep[i] = False
        else:
            last = i
    return peaks[keep], heights[keep]


def beat_segments(rpeaks: np.ndarray, n_samples: int, fs: float, max_beats: int) -> BeatSegments:
    """Cut ``[0, n_samples)`` into at most ``max_beats`` beats around the R peaks.

    Beat k spans ``[R_k - (1 - f) * RR_{k-1}, R_k + f * RR_k)`` with ``f`` =
    :data:`BOUNDARY_FRACTION`, so consecutive beats share their boundary: the segments tile the
    time from the first beat's start to the last beat's end without gaps or overlaps. The first
    beat borrows its next RR for the missing previous one, the last beat its previous RR; both are
    clipped to the window. A lone beat uses a nominal 1-s RR. With no R peak the window is cut into
    1-s pseudo-beats. The first ``max_beats`` beats are kept; rows beyond are padding (``mask``
    False).
    """
    if max_beats < 1:
        raise ValueError(f"max_beats must be >= 1 (got {max_beats})")
    n_samples = int(n_samples)
    r = np.unique(np.asarray(rpeaks, dtype=np.int64).ravel())
    r = r[(r >= 0) & (r < n_samples)]
    if r.size == 0 or n_samples <= 1:
        return _pseudo_beats(n_samples, fs, max_beats)
    if r.size == 1:
        rr_samples = np.array([PSEUDO_BEAT_S * fs])
        prev_rr = next_rr = rr_samples
    else:
        gaps = np.diff(r).astype(np.float64)
        prev_rr = np.concatenate([gaps[:1], gaps])  # interval before each beat (first: the next one)
        next_rr = np.concatenate([gaps, gaps[-1:]])  # interval after each beat (last: the previous)
    ends = r + np.round(BOUNDARY_FRACTION * next_rr).astype(np.int64)
    starts = np.empty_like(ends)
    starts[1:] = ends[:-1]  # shared boundaries: no gap, no overlap
    starts[0] = r[0] - int(round((1.0 - BOUNDARY_FRACTION) * prev_rr[0]))
    starts = np.clip(starts, 0, n_samples)
    ends = np.clip(ends, 0, n_samples)
    ends = np.maximum(ends, np.minimum(starts + 1, n_samples))
    rr_s = prev_rr / fs
    return _pad(np.stack([starts, ends], axis=1), r, rr_s, max_beats)


def _pseudo_beats(n_samples: int, fs: float, max_beats: int) -> BeatSegments:
    step = max(int(round(PSEUDO_BEAT_S * fs)), 1)
    starts = np.arange(0, max(n_samples, 1), step, dtype=np.int64)
    ends = np.minimum(starts + step, max(n_samples, 1))
    centres = (starts + ends) // 2
    rr = (ends - starts) / fs
    return _pad(np.stack([starts, ends], axis=1), centres, rr, max_beats)


def _pad(bounds: np.ndarray, rpeaks: np.ndarray, rr: np.ndarray, max_beats: int) -> BeatSegments:
    k = min(bounds.shape[0], max_beats)
    out_bounds = np.empty((max_beats, 2), dtype=np.int64)
    out_bounds[:k] = bounds[:k]
    out_bounds[k:] = bounds[k - 1]
    out_r = np.empty(max_beats, dtype=np.int64)
    out_r[:k] = rpeaks[:k]
    out_r[k:] = rpeaks[k - 1]
    out_rr = np.zeros(max_beats, dtype=np.float32)
    out_rr[:k] = rr[:k]
    mask = np.zeros(max_beats, dtype=bool)
    mask[:k] = True
    return BeatSegments(out_bounds, mask, out_r, out_rr)


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
# composition
# --------------------------------------------------------------------------------------------


def make_sample(
    signal_mv: np.ndarray,
    present: np.ndarray,
    visible: np.ndarray,
    data: Any,
    model: Any,
) -> dict[str, torch.Tensor]:
    """Build the model input of one record.

    ``signal_mv`` is (12, T) mV at ``data.fs`` (as :func:`preprocess` or the packed cache gives it),
    ``present`` (12,) which leads the record has, ``visible`` (12,) which ones the model may see
    (a visible lead that is not present is treated as hidden). Returns tensors:

    * ``signal`` (12, T) float32: each lead minus its mean, divided by one scale (the standard
      deviation pooled over the visible leads); hidden and absent leads are zero;
    * ``target`` (12, T) float32: every present lead, same centring and scale (absent leads zero);
    * ``visible``, ``present`` (12,) bool;
    * ``scale`` () float32 in mV per unit (``target * scale + lead mean`` gives back mV).
      With ``data.normalize_scope == "lead"`` it is (12,) instead (one per lead, for comparison only);
    * ``bounds`` (K, 2) int64, ``beat_mask`` (K,) bool, ``rr`` (K,) float32 seconds, ``rpeaks``
      (K,) int64 sample of each beat's R peak, K = ``model.max_beats``, from R peaks detected on
      the visible leads of the mV signal.
    """
    x = np.asarray(signal_mv, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != N_LEADS:
        raise ValueError(f"signal_mv must be (12, T), got {x.shape}")
    present = np.asarray(present, dtype=bool).reshape(N_LEADS)
    seen = np.asarray(visible, dtype=bool).reshape(N_LEADS) & present

    target, scale = normalize(x, seen, data.normalize, data.normalize_scope)
    target = np.where(present[:, None], target, np.float32(0.0)).astype(np.float32, copy=False)
    signal = np.where(seen[:, None], target, np.float32(0.0)).astype(np.float32, copy=False)

    rpeaks = detect_r_peaks(x[seen], data.fs) if seen.any() else np.zeros(0, dtype=np.int64)
    segments = beat_segments(rpeaks, x.shape[-1], data.fs, model.max_beats)
    return {
        "signal": torch.from_numpy(np.ascontiguousarray(signal)),
        "target": torch.from_numpy(np.ascontiguousarray(target)),
        "visible": torch.from_numpy(seen.copy()),
        "present": torch.from_numpy(present.copy()),
        "scale": torch.as_tensor(np.asarray(scale, dtype=np.float32)),
        "bounds": torch.from_numpy(segments.bounds.astype(np.int64)),
        "beat_mask": torch.from_numpy(segments.mask.copy()),
        "rr": torch.from_numpy(segments.rr.astype(np.float32)),
        "rpeaks": torch.from_numpy(segments.rpeaks.astype(np.int64)),
    }
