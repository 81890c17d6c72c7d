"""One representative beat of a 3-D cardiac field, cut into its QRS and T loops.

A vectorcardiogram is read beat by beat: overlaying ten seconds of loops hides each one behind
the others, and single beats carry noise. As clinical VCG systems do, the beats are aligned on
their R peaks and averaged by the *median* (robust to an ectopic beat or an artefact), sample by
sample and axis by axis, after band-limited upsampling to at least ``UPSAMPLE_HZ`` so loops are
smooth lines, not sparse dots.

Then the beat is segmented on its *spatial velocity* ``|dv/dt|`` (how fast the heart vector
moves) and *spatial magnitude* ``|v|``, both independent of the lead system's orientation:

- **baseline**: the stillest point of the PR segment (lowest spatial velocity 40-120 ms before
  R); it is subtracted, so every loop starts at the origin as on a VCG display;
- **QRS**: from the first to the last sample around R where the spatial velocity exceeds
  ``QRS_VELOCITY_FRACTION`` of its peak (the QRS moves the vector far faster than P or T);
- **T**: from the QRS end (J point) to the first sample after the T apex (the largest magnitude
  60 ms after J or later) where the magnitude falls below ``T_END_FRACTION`` of the apex.

No P loop is cut: on simulated records with atrial fibrillation a magnitude rule still found a
"P wave" in 14 of 15 (the residue of f-waves and noise), and neither its size nor its beat-to-beat
coherence separated the two reliably. The rest of the beat (P wave, PR segment) is shown as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from lvcg_cli.errors import LvcgError

UPSAMPLE_HZ = 500.0
QRS_VELOCITY_FRACTION = 0.1
T_END_FRACTION = 0.15


@dataclass
class MedianBeat:
    """The representative beat: ``samples`` (3, L) in the field's unit (mV) at ``fs``, baseline removed.

    Windows are ``(start, end)`` sample indices into ``samples`` (end exclusive); ``r`` is the
    aligned R peak. ``n_beats`` beats were averaged.
    """

    samples: np.ndarray
    fs: float
    r: int
    n_beats: int
    qrs: tuple[int, int]
    t: tuple[int, int]

    @property
    def time_ms(self) -> np.ndarray:
        """Time of each sample relative to the R peak, in ms."""
        return (np.arange(self.samples.shape[1]) - self.r) * 1000.0 / self.fs

    def window(self, name: str) -> tuple[int, int]:
        """The ``(start, end)`` samples of loop ``"QRS"`` or ``"T"``."""
        return {"QRS": self.qrs, "T": self.t}[name]

    def loop(self, name: str) -> np.ndarray:
        """The (3, n) samples of loop ``"QRS"`` or ``"T"``."""
        start, end = self.window(name)
        return self.samples[:, start:end]

    def duration_ms(self, name: str) -> float:
        start, end = self.window(name)
        return (end - start) * 1000.0 / self.fs

    def qrs_t_angle(self) -> float:
        """Spatial angle (degrees) between the mean QRS and mean T vectors."""
        qrs, t = self.loop("QRS").mean(axis=1), self.loop("T").mean(axis=1)
        norm = np.linalg.norm(qrs) * np.linalg.norm(t)
        if norm == 0:
            return float("nan")
        return float(np.degrees(np.arccos(np.clip(qrs @ t / norm, -1.0, 1.0))))


def upsample(field: np.ndarray, fs: float, target_hz: float = UPSAMPLE_HZ) -> tuple[np.ndarray, float]:
    """(3, T) at ``fs`` -> at an integer multiple of ``fs`` >= ``target_hz`` (polyphase, band-limited)."""
    factor = max(1, math.ceil(target_hz / fs - 1e-9))
    if factor == 1:
        return np.asarray(field, np.float64), float(fs)
    return resample_poly(np.asarray(field, np.float64), factor, 1, axis=-1), float(fs) * factor


def median_beat(field: np.ndarray, fs: float, rpeaks: np.ndarray | None = None) -> MedianBeat:
    """The median beat of a (3, T) field and its loop windows (see the module doc).

    ``rpeaks`` are sample indices at ``fs`` (detected on the field when None). Raises
    :class:`LvcgError` when no complete beat is in the field.
    """
    field = np.asarray(field, np.float64)
    if field.ndim != 2 or field.shape[0] != 3:
        raise LvcgError(f"a VCG field must be (3, T) (got {field.shape})")
    if rpeaks is None:
        from lvcg_cli.signals.beats import detect_r_peaks

        rpeaks = detect_r_peaks(field, fs)
    rpeaks = np.asarray(rpeaks, dtype=np.int64)
    if rpeaks.size == 0:
        raise LvcgError("no beat found in the field (no R peak)")
    up, fs_up = upsample(field, fs)
    factor = fs_up / fs
    magnitude = np.linalg.norm(up, axis=0)
    search = int(round(0.02 * fs_up))
    peaks = []
    for r in np.round(rpeaks * factor).astype(np.int64):  # refine on the upsampled magnitude
        lo, hi = max(r - search, 0), min(r + search + 1, up.shape[1])
        if hi > lo:
            peaks.append(lo + int(np.argmax(magnitude[lo:hi])))
    peaks = np.asarray(peaks, dtype=np.int64)
    rr = float(np.median(np.diff(peaks))) / fs_up if peaks.size > 1 else 1.0
    pre = int(round(0.30 * fs_up))
    post = int(round(float(np.clip(0.7 * rr, 0.35, 0.6)) * fs_up))
    whole = [r for r in peaks if r - pre >= 0 and r + post <= up.shape[1]]
    if not whole:
        raise LvcgError(
            f"no complete beat in the field ({peaks.size} R peak(s), none with "
            f"{pre / fs_up:.2f} s before and {post / fs_up:.2f} s after it)"
        )
    beats = np.stack([up[:, r - pre : r + post] for r in whole])
    samples = np.median(beats, axis=0)
    qrs, t, baseline = segment_beat(samples, fs_up, pre)
    return MedianBeat(samples - baseline[:, None], fs_up, pre, len(whole), qrs, t)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    return np.convolve(x, np.ones(width) / width, mode="same")


def segment_beat(beat: np.ndarray, fs: float, r: int) -> tuple[tuple[int, int], tuple[int, int], np.ndarray]:
    """QRS and T windows (sample indices, end exclusive) of one beat at ``fs`` with its R peak at
    sample ``r``, and the beat's (3,) baseline (see the module doc)."""
    n = beat.shape[1]

    def at(seconds: float) -> int:
        return int(np.clip(r + round(seconds * fs), 0, n - 1))

    velocity = _smooth(np.linalg.norm(np.gradient(beat, axis=1), axis=0) * fs, max(int(0.01 * fs), 1))
    lo, hi = at(-0.12), at(-0.04)
    still = lo + int(np.argmin(velocity[lo : hi + 1])) if hi > lo else max(r - 1, 0)
    half = max(int(0.005 * fs), 1)
    baseline = beat[:, max(still - half, 0) : still + half + 1].mean(axis=1)
    centred = beat - baseline[:, None]
    magnitude = np.linalg.norm(centred, axis=0)

    # QRS: where the vector moves fast, between the still PR point and 200 ms after R.
    qrs_end_limit = at(0.2)
    peak_velocity = velocity[still : qrs_end_limit + 1].max()
    fast = np.flatnonzero(velocity[still : qrs_end_limit + 1] > QRS_VELOCITY_FRACTION * peak_velocity) + still
    if fast.size == 0:
        fast = np.array([r])
    # the QRS is the run of fast samples around R (gaps shorter than 20 ms are bridged)
    gap = int(0.02 * fs)
    breaks = np.flatnonzero(np.diff(fast) > gap)
    runs = np.split(fast, breaks + 1)
    run = min(runs, key=lambda run: 0 if run[0] <= r <= run[-1] else min(abs(run[0] - r), abs(run[-1] - r)))
    qrs = (int(run[0]), int(run[-1]) + 1)

    # T: from the J point to where the magnitude falls back after the T apex.
    apex_from = min(qrs[1] + int(0.06 * fs), n - 1)
    if apex_from >= n - 2:
        t = (qrs[1], n)
    else:
        apex = apex_from + int(np.argmax(magnitude[apex_from:]))
        below = np.flatnonzero(magnitude[apex:] < T_END_FRACTION * magnitude[apex])
        t_end = apex + int(below[0]) if below.size else n
        t = (qrs[1], max(t_end, apex + 1))

    return qrs, t, baseline
