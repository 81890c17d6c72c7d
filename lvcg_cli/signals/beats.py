"""R-peak detection and the beat segments the model cuts its latent field into.

The detector works on any subset of leads (one is enough) at any rate from 100 Hz up:

1. band-pass every lead to 5-20 Hz (where QRS energy is, and P/T waves and baseline are not);
2. combine the leads into one envelope: the root of the summed squared derivatives, smoothed over
   50 ms. Leads are summed in their own units (mV), not each scaled to unit size: scaling
   amplifies leads whose QRS is small next to their P/T waves, pacing spikes or noise, and on
   LUDB it cost ~0.5 points of F1. Absent (all-zero) leads simply add nothing;
3. ``scipy.signal.find_peaks`` on that envelope with a refractory distance (250 ms) and a height
   threshold of half a robust estimate of the typical QRS peak (see :func:`_typical_qrs_height`:
   neither a few artefacts nor a window with very few beats can set it);
4. drop a candidate that follows a kept beat by less than 400 ms and is weaker than 0.6 of it
   (a T wave);
5. report the envelope maximum, i.e. the energy centre of the QRS, as the R peak. Refining it to
   the extremum of the dominant lead was tried and is worse: in wide (paced, bundle-branch-block)
   complexes each lead's extremum sits at a different instant, up to ~90 ms apart, and the
   extremum of the largest lead is often an S wave (LUDB F1 0.96 with that refinement, 0.995
   without; see docs/BENCHMARKS.md).

Everything is whole-array numpy/scipy; the only Python loops run over detected beats.

Speed (this runs once per training sample, in the DataLoader workers): the QRS band-pass and its
steady-state initial conditions are designed once per rate (:func:`_qrs_filter`; designing them
took ~40 % of a sample), the zero-phase filter is scipy's ``sosfiltfilt`` computation with those
cached parts (:func:`_filtfilt`, bit-identical to it), and the robust QRS height reads its
quantiles off one sorted array. Results are bit-identical to the straightforward version, which
``tests/reference_pipeline.py`` keeps for comparison.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy import signal as sps

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


class BeatSegments(NamedTuple):
    """Beat segments of one window, padded to ``max_beats`` rows.

    ``bounds`` (K, 2) int [start, end) sample indices; ``mask`` (K,) True for real beats;
    ``rpeaks`` (K,) int; ``rr`` (K,) float seconds (the interval to the previous R peak; the first
    beat uses the next interval). Padding rows repeat the last real beat's bounds and R peak (a valid,
    non-empty segment, so code that forgets the mask still cannot divide by zero) with ``rr`` = 0.
    """

    bounds: np.ndarray
    mask: np.ndarray
    rpeaks: np.ndarray
    rr: np.ndarray


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _qrs_filter(fs: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The QRS band-pass at rate ``fs`` as (sos, zi), or None when the rate is too low for the band.

    ``zi`` is ``sosfilt_zi(sos)``, the steady-state initial conditions ``sosfiltfilt`` starts from.
    Every sample at this rate shares them, so nothing may write to them (``zi`` is read-only;
    ``sos`` cannot be, because scipy's compiled ``sosfilt`` asks for a writable buffer).
    """
    high = min(QRS_BAND_HZ[1], 0.45 * fs)
    if not high > QRS_BAND_HZ[0]:
        return None
    sos = sps.butter(2, [QRS_BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    zi = sps.sosfilt_zi(sos)
    zi.setflags(write=False)
    return sos, zi


def _filtfilt(sos: np.ndarray, zi: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis=-1, padtype="odd", padlen=padlen)`` for a (L, T)
    float64 ``x``, with ``zi = sosfilt_zi(sos)`` given instead of recomputed.

    The same operations in the same order as scipy 1.10-1.17 (odd extension, forward pass from
    ``zi * x[0]``, backward pass from ``zi * y[-1]``, trim), so the result is bit-identical to
    scipy's; a test keeps it so.
    """
    if padlen > 0:
        left = 2 * x[:, :1] - x[:, padlen:0:-1]
        right = 2 * x[:, -1:] - x[:, -2 : -(padlen + 2) : -1]
        ext = np.concatenate((left, x, right), axis=-1)
    else:
        ext = x
    z = zi.reshape(zi.shape[0], 1, 2)
    y, _ = sps.sosfilt(sos, ext, axis=-1, zi=z * ext[:, :1])
    y, _ = sps.sosfilt(sos, y[:, ::-1], axis=-1, zi=z * y[:, -1:])
    y = y[:, ::-1]
    return y[:, padlen:-padlen] if padlen > 0 else y


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """The multi-lead QRS energy envelope (T,) that peaks are found on (see the module docstring)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x).all(axis=1)]
    n_time = x.shape[-1]
    if x.shape[0] == 0 or n_time < 3:
        return np.zeros(n_time)
    qrs_filter = _qrs_filter(float(fs))
    if qrs_filter is not None:
        sos, zi = qrs_filter
        band = _filtfilt(sos, zi, x, padlen=min(3 * (2 * len(sos) + 1), n_time - 1))
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
    ascending = np.sort(heights)
    n = ascending.size
    q50, q875 = np.quantile(ascending, (0.5, 0.875))
    top = ascending[ascending >= q50]
    many = min(_sorted_median(top), float(q875))
    few = _sorted_median(ascending[ascending >= 0.3 * ascending[n - 1]])
    return max(many, 0.3 * few)


def _sorted_median(ascending: np.ndarray) -> float:
    """``np.median`` of a sorted, non-empty, finite array, without its partition and dispatch:
    the middle element, or the mean of the middle two computed as ``np.median`` does."""
    n = ascending.size
    mid = n // 2
    if n % 2:
        return float(ascending[mid])
    return float((ascending[mid - 1] + ascending[mid]) / 2.0)


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


# --------------------------------------------------------------------------------------------
# segments
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def match_peaks(reference: np.ndarray, detected: np.ndarray, tolerance: int) -> tuple[int, int, int]:
    """One-to-one matching of detections to reference peaks within ``tolerance`` samples.

    Returns ``(tp, fp, fn)``. Each reference takes its nearest detection; a detection claimed by
    two references counts once (references are further apart than twice any sensible tolerance).
    """
    ref = np.sort(np.asarray(reference, dtype=np.int64))
    det = np.sort(np.asarray(detected, dtype=np.int64))
    if ref.size == 0 or det.size == 0:
        return 0, int(det.size), int(ref.size)
    pos = np.searchsorted(det, ref)
    left = det[np.clip(pos - 1, 0, det.size - 1)]
    right = det[np.clip(pos, 0, det.size - 1)]
    nearest_idx = np.where(
        np.abs(ref - left) <= np.abs(right - ref),
        np.clip(pos - 1, 0, det.size - 1),
        np.clip(pos, 0, det.size - 1),
    )
    ok = np.abs(det[nearest_idx] - ref) <= tolerance
    tp = int(np.unique(nearest_idx[ok]).size)
    return tp, int(det.size - tp), int(ref.size - tp)
