"""Handcrafted ECG features: the baseline a learned representation has to beat in a linear probe.

Simple, documented and cheap, in the spirit of the feature baselines of the PTB-XL benchmark
(Strodthoff et al. 2021) rather than a full measurement program. Per lead (12 leads, canonical
order; absent leads give zeros):

* amplitude percentiles 1, 5, 25, 50, 75, 95, 99 of the band-passed signal (mV), its RMS and
  peak-to-peak range and mean (10 values: QRS voltage, ST level, T polarity, the axis through
  the signs across leads);
* log relative power in the bands 0.5-3, 3-8, 8-15, 15-25 and 25-40 Hz (Welch, 2-s segments):
  where the energy sits (wide vs narrow QRS, fibrillatory waves, noise);

and per record, from R peaks detected on all present leads
(:func:`lvcg_cli.signals.beats.detect_r_peaks`): heart rate (bpm), mean RR, SDNN, RMSSD, the
coefficient of variation of RR (irregularity: atrial fibrillation) and the number of beats.
That is 12 x 15 + 6 = 186 features. Nothing is learned here; the probe standardises them.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
BANDS_HZ = ((0.5, 3.0), (3.0, 8.0), (8.0, 15.0), (15.0, 25.0), (25.0, 40.0))
RHYTHM_FEATURES = ("hr_bpm", "rr_mean_s", "rr_sdnn_s", "rr_rmssd_s", "rr_cv", "n_beats")
FEATURES_VERSION = "1"


def amplitude_features(x: np.ndarray) -> np.ndarray:
    """(N, 12, T) mV -> (N, 12, 10): percentiles, RMS, peak-to-peak and mean."""
    x = np.asarray(x, dtype=np.float32)
    pct = np.moveaxis(np.percentile(x, PERCENTILES, axis=-1), 0, -1)  # (N, 12, P)
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=-1))[..., None]
    ptp = np.ptp(x, axis=-1)[..., None]
    mean = x.mean(axis=-1, dtype=np.float64)[..., None]
    return np.concatenate([pct, rms, ptp, mean], axis=-1)


def spectral_features(x: np.ndarray, fs: float) -> np.ndarray:
    """(N, 12, T) -> (N, 12, 5): log10 of each band's share of the 0.5-40 Hz power (Welch)."""
    x = np.asarray(x, dtype=np.float32)
    nperseg = int(min(x.shape[-1], round(2 * fs)))
    freqs, psd = sps.welch(x, fs=fs, nperseg=nperseg, axis=-1)
    total = psd[..., (freqs >= BANDS_HZ[0][0]) & (freqs < BANDS_HZ[-1][1])].sum(axis=-1) + 1e-12
    powers = [psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) for lo, hi in BANDS_HZ]
    return np.log10(np.stack(powers, axis=-1) / total[..., None] + 1e-6)


def rhythm_features(x: np.ndarray, present: np.ndarray, fs: float) -> np.ndarray:
    """(N, 12, T) -> (N, 6): heart rate and RR variability from R peaks on the present leads."""
    from lvcg_cli.signals.beats import detect_r_peaks

    out = np.zeros((x.shape[0], len(RHYTHM_FEATURES)), dtype=np.float64)
    for i in range(x.shape[0]):  # the detector works one record at a time
        rows = np.flatnonzero(present[i])
        peaks = detect_r_peaks(x[i, rows], fs) if rows.size else np.zeros(0, dtype=np.int64)
        rr = np.diff(peaks) / fs
        if rr.size == 0:
            out[i] = (0.0, 0.0, 0.0, 0.0, 0.0, float(peaks.size))
            continue
        mean_rr = float(rr.mean())
        sdnn = float(rr.std())
        rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2))) if rr.size > 1 else 0.0
        out[i] = (60.0 / mean_rr, mean_rr, sdnn, rmssd, sdnn / mean_rr, float(peaks.size))
    return out


def handcrafted_features(signals: np.ndarray, present: np.ndarray, fs: float) -> np.ndarray:
    """(N, 12, T) band-passed mV windows, (N, 12) present -> (N, 186) float32 features.

    Absent leads contribute zeros (their amplitude and spectral features are zeroed, not
    computed from the zero signal's log of nothing).
    """
    signals = np.asarray(signals, dtype=np.float32)
    present = np.broadcast_to(np.asarray(present, dtype=bool), signals.shape[:2])
    per_lead = np.concatenate([amplitude_features(signals), spectral_features(signals, fs)], axis=-1)
    per_lead = np.where(present[..., None], per_lead, 0.0)
    rhythm = rhythm_features(signals, present, fs)
    features = np.concatenate([per_lead.reshape(signals.shape[0], -1), rhythm], axis=1)
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
