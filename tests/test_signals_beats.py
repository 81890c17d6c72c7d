"""R-peak detection (synthetic truths and LUDB annotations) and beat segments."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from hypothesis import strategies as st

from lvcg_cli.signals.beats import BOUNDARY_FRACTION, beat_segments, detect_r_peaks, match_peaks
from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.preprocess import bandpass, resample


def synthetic_ecg(r_times, fs, seconds, leads=3, noise=0.02, seed=0):
    """Gaussian P, QRS (R peak at each r_time) and T waves per lead, plus baseline wander and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    gains = rng.uniform(0.4, 1.5, size=(leads, 1)) * rng.choice([-1, 1], size=(leads, 1))
    one = np.zeros_like(t)
    for r in r_times:
        one += -0.1 * np.exp(-0.5 * ((t - r + 0.02) / 0.008) ** 2)  # Q
        one += 1.0 * np.exp(-0.5 * ((t - r) / 0.012) ** 2)  # R
        one += -0.25 * np.exp(-0.5 * ((t - r - 0.025) / 0.01) ** 2)  # S
        one += 0.15 * np.exp(-0.5 * ((t - r + 0.17) / 0.025) ** 2)  # P
        one += 0.35 * np.exp(-0.5 * ((t - r - 0.3) / 0.05) ** 2)  # T
    x = gains * one[None] + 0.2 * np.sin(2 * np.pi * 0.2 * t)[None]
    return x + noise * rng.normal(size=x.shape)


IRREGULAR = [0.45, 1.2, 1.75, 2.9, 3.35, 4.4, 5.0, 6.3, 6.75, 7.9, 8.6, 9.3]


@pytest.mark.parametrize("fs", [100.0, 250.0, 500.0])
@pytest.mark.parametrize("leads", [1, 3, 12])
def test_detects_known_irregular_peaks(fs, leads):
    x = synthetic_ecg(IRREGULAR, fs, 10.0, leads=leads, seed=leads)
    peaks = detect_r_peaks(x, fs)
    truth = np.round(np.array(IRREGULAR) * fs).astype(int)
    assert peaks.dtype == np.int64 and np.all(np.diff(peaks) > 0)
    assert len(peaks) == len(truth)
    assert np.max(np.abs(peaks - truth)) <= max(2, int(0.015 * fs))


def test_absent_zero_leads_are_ignored_and_flat_input_has_no_peaks():
    fs = 100.0
    x = np.zeros((12, 1000))
    assert detect_r_peaks(x, fs).size == 0
    x[1] = synthetic_ecg(IRREGULAR, fs, 10.0, leads=1)[0]
    truth = np.round(np.array(IRREGULAR) * fs).astype(int)
    assert np.array_equal(detect_r_peaks(x, fs), detect_r_peaks(x[1:2], fs))
    assert len(detect_r_peaks(x, fs)) == len(truth)
    assert detect_r_peaks(np.full((2, 1000), np.nan), fs).size == 0


def test_single_beat():
    x = synthetic_ecg([1.3], 100.0, 3.0, leads=2)
    assert np.abs(detect_r_peaks(x, 100.0) - 130).max() <= 2


def test_match_peaks_counts():
    assert match_peaks([100, 200, 300], [102, 260, 301, 400], 5) == (2, 2, 1)
    assert match_peaks([], [1, 2], 5) == (0, 2, 0)
    assert match_peaks([10], [], 5) == (0, 0, 1)


# ---------------------------------------------------------------------------- segments
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 999), min_size=2, max_size=40, unique=True),
    st.integers(1, 25),
)
def test_segments_tile_between_first_and_last_beat(peaks, max_beats):
    fs, n = 100.0, 1000
    r = np.sort(np.array(peaks))
    seg = beat_segments(r, n, fs, max_beats)
    k = min(len(r), max_beats)
    assert seg.bounds.shape == (max_beats, 2) and seg.mask.sum() == k and seg.mask[:k].all()
    b = seg.bounds[:k]
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] <= n) and np.all(b[:, 1] > b[:, 0])
    assert np.array_equal(b[1:, 0], b[:-1, 1])  # no gap, no overlap
    assert np.array_equal(seg.rpeaks[:k], r[:k])
    gaps = np.diff(r)
    # every kept beat that has a successor ends at R_k + f * RR_k (clipped to the window)
    boundaries = np.minimum(r[:-1] + np.round(BOUNDARY_FRACTION * gaps), n)
    n_inner = min(k, len(r) - 1)
    assert np.array_equal(b[:n_inner, 1], boundaries[:n_inner])
    expected_rr = np.concatenate([gaps[:1], gaps])[:k] / fs
    assert np.allclose(seg.rr[:k], expected_rr)
    assert np.all(seg.rr[k:] == 0) and np.all(seg.bounds[k:] == b[-1])


def test_segment_formula_on_an_example():
    seg = beat_segments(np.array([50, 150, 270]), 400, 100.0, 5)
    # boundaries at R_k + 0.6 RR_k; first start R_0 - 0.4 RR_0, last end R_2 + 0.6 RR_1
    assert seg.bounds[:3].tolist() == [[10, 110], [110, 222], [222, 342]]
    assert seg.rr[:3].tolist() == pytest.approx([1.0, 1.0, 1.2])
    assert seg.mask.tolist() == [True, True, True, False, False]


def test_first_max_beats_and_clipping():
    seg = beat_segments(np.arange(5, 1000, 80), 1000, 100.0, 4)
    assert seg.mask.all() and seg.bounds[0, 0] == 0 and seg.rpeaks.tolist() == [5, 85, 165, 245]


def test_single_beat_and_pseudo_beats():
    one = beat_segments(np.array([500]), 1000, 100.0, 3)
    assert one.bounds[0].tolist() == [460, 560] and one.mask.tolist() == [True, False, False]
    assert one.rr[0] == pytest.approx(1.0)
    none = beat_segments(np.array([], dtype=int), 1000, 100.0, 20)
    assert none.mask.sum() == 10
    assert none.bounds[:10].tolist() == [[i * 100, (i + 1) * 100] for i in range(10)]
    assert np.allclose(none.rr[:10], 1.0)
    short = beat_segments(np.array([], dtype=int), 250, 100.0, 20)
    assert short.bounds[:3].tolist() == [[0, 100], [100, 200], [200, 250]] and short.mask.sum() == 3
    assert beat_segments(np.array([], dtype=int), 1000, 100.0, 4).mask.sum() == 4


# ---------------------------------------------------------------------------- LUDB
LUDB_RECORDS = ["1", "2", "3", "4", "5", "6"]


def _ludb_reference(path):
    ann = wfdb.rdann(str(path), "ii")
    return np.asarray(ann.sample)[np.asarray(ann.symbol) == "N"]


@pytest.mark.parametrize("rate", [None, 100.0])
def test_ludb_f1(shared_data, rate):
    folder = shared_data / "ludb" / "data"
    tp = fp = fn = 0
    for name in LUDB_RECORDS:
        record = read_record(folder / f"{name}.hea")
        ref = _ludb_reference(folder / name)
        if rate is None:
            det = detect_r_peaks(record.signal, record.fs)
        else:
            x = bandpass(resample(record.signal, record.fs, rate), rate)
            det = np.round(detect_r_peaks(x, rate) * record.fs / rate).astype(int)
        margin = int(0.15 * record.fs)
        det = det[(det >= ref.min() - margin) & (det <= ref.max() + margin)]
        a, b, c = match_peaks(ref, det, int(0.05 * record.fs))
        tp, fp, fn = tp + a, fp + b, fn + c
    assert tp + fn >= 40  # the reference is not empty
    assert 2 * tp / (2 * tp + fp + fn) >= 0.97
