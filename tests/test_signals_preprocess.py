"""Preprocessing against closed-form truths: filter responses, resampling, windows, z-scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from lvcg_cli.settings import DataSettings
from lvcg_cli.signals.io import Record
from lvcg_cli.signals.preprocess import (
    bandpass,
    bandpass_sos,
    fix_window,
    normalize,
    preprocess,
    rational_factors,
    resample,
    split_windows,
)
from lvcg_cli.signals.repair import repair_nonfinite


def sine(freq, fs, seconds, amplitude=1.0, phase=0.0):
    t = np.arange(int(round(seconds * fs))) / fs
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


# ---------------------------------------------------------------------------- resample
@pytest.mark.parametrize(
    ("fs_in", "fs_out", "up", "down"),
    [
        (500, 100, 1, 5),
        (360, 100, 5, 18),
        (100, 500, 5, 1),
        (257, 100, 100, 257),
        (1000, 100, 1, 10),
        (100, 100, 1, 1),
    ],
)
def test_rational_factors(fs_in, fs_out, up, down):
    assert rational_factors(fs_in, fs_out) == (up, down)


def test_resample_length_and_sinusoid_values():
    fs_in, fs_out = 500.0, 100.0
    x = np.stack([sine(3.0, fs_in, 10), sine(7.0, fs_in, 10, 0.5, 1.0)])
    y = resample(x, fs_in, fs_out)
    assert y.shape == (2, 1000)
    truth = np.stack([sine(3.0, fs_out, 10), sine(7.0, fs_out, 10, 0.5, 1.0)])
    assert np.max(np.abs(y - truth)[:, 50:-50]) < 1e-2


def test_resample_round_trip():
    x = sine(2.0, 100.0, 10) + sine(11.0, 100.0, 10, 0.3)
    back = resample(resample(x, 100.0, 500.0), 500.0, 100.0)
    assert back.shape == x.shape
    assert np.max(np.abs(back - x)[50:-50]) < 1e-2


# ---------------------------------------------------------------------------- band-pass
@pytest.mark.parametrize("freq", [0.1, 0.67, 2.0, 10.0, 30.0, 40.0, 45.0])
def test_bandpass_gain_matches_filtfilt_response(freq):
    """sosfiltfilt applies |H(f)|^2; a steady sinusoid comes out scaled by exactly that."""
    fs, band, order = 100.0, (0.67, 40.0), 2
    x = sine(freq, fs, 200)
    y = bandpass(x, fs, band, order)
    _, h = sps.sosfreqz(bandpass_sos(fs, band, order), worN=[freq], fs=fs)
    expected = np.abs(h[0]) ** 2
    middle = slice(len(x) // 4, 3 * len(x) // 4)
    gain = np.sqrt(2) * np.std(y[middle])
    assert gain == pytest.approx(expected, abs=0.01)


def test_bandpass_passes_midband_and_stops_drift():
    fs = 100.0
    y = bandpass(sine(10.0, fs, 60) + sine(0.05, fs, 60, 5.0), fs)
    assert np.max(np.abs(y - sine(10.0, fs, 60))[500:-500]) < 0.05


def test_high_corner_is_clipped_below_nyquist():
    sos = bandpass_sos(50.0, (0.67, 40.0), 2)  # 40 Hz is above Nyquist (25 Hz)
    w, h = sps.sosfreqz(sos, worN=[22.5 * 0.999], fs=50.0)
    assert abs(h[0]) == pytest.approx(np.sqrt(0.5), abs=0.02)  # -3 dB at 0.9 * Nyquist
    clipped_lowpass = bandpass_sos(100.0, (0.0, 60.0))  # a low-pass at 0.9 * 50 Hz
    _, h45 = sps.sosfreqz(clipped_lowpass, worN=[45.0], fs=100.0)
    assert abs(h45[0]) == pytest.approx(np.sqrt(0.5), abs=0.01)
    lowpass_only = bandpass_sos(100.0, (0.0, 40.0))
    _, h0 = sps.sosfreqz(lowpass_only, worN=[0.0], fs=100.0)
    assert abs(h0[0]) == pytest.approx(1.0)


def test_bandpass_short_input_does_not_fail():
    assert bandpass(np.ones((3, 5)), 100.0).shape == (3, 5)


# ---------------------------------------------------------------------------- windows
def test_fix_window_policies():
    x = np.arange(10.0)[None].repeat(2, 0)
    assert fix_window(x, 4, "start").tolist()[0] == [0, 1, 2, 3]
    assert fix_window(x, 4, "center").tolist()[0] == [3, 4, 5, 6]
    a = fix_window(x, 4, "random", rng=np.random.default_rng(3))
    b = fix_window(x, 4, "random", rng=np.random.default_rng(3))
    assert np.array_equal(a, b) and np.all(np.diff(a[0]) == 1) and 0 <= a[0, 0] <= 6
    assert fix_window(x, 13, pad="zero")[0].tolist() == [*range(10), 0, 0, 0]
    assert fix_window(x, 13, pad="edge")[0].tolist() == [*range(10), 9, 9, 9]
    assert fix_window(x, 10) is x


def test_split_windows_tiles_consecutively():
    x = np.arange(2 * 25, dtype=float).reshape(2, 25)
    w = split_windows(x, 10)
    assert w.shape == (2, 2, 10)
    assert np.array_equal(w[1], x[:, 10:20])
    assert split_windows(x, 30).shape == (1, 2, 30)


# ---------------------------------------------------------------------------- normalisation
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.booleans(), min_size=12, max_size=12).filter(any))
def test_zscore_record_scope_uses_visible_leads_only(seed, vis):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(12, 300)) * rng.uniform(0.1, 3, size=(12, 1)) + rng.normal(size=(12, 1))).astype(
        np.float32
    )
    visible = np.array(vis)
    z, scale = normalize(x, visible)
    centred = x.astype(np.float64) - x.mean(axis=1, keepdims=True)
    expected = np.sqrt(np.mean(centred[visible] ** 2))
    assert scale.shape == () and float(scale) == pytest.approx(expected, rel=1e-5)
    assert np.allclose(z.mean(axis=1), 0, atol=1e-5)
    assert np.mean(z[visible].astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert np.allclose(z * scale + x.mean(axis=1, keepdims=True), x, atol=1e-5)
    x2 = x.copy()
    x2[~visible] *= 7.0  # hidden leads do not move the scale
    assert float(normalize(x2, visible)[1]) == pytest.approx(float(scale), rel=1e-6)


def test_zscore_lead_scope_and_none():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 500)).astype(np.float32) * np.arange(1, 13, dtype=np.float32)[:, None]
    z, scale = normalize(x, np.ones(12, bool), scope="lead")
    assert scale.shape == (12,)
    assert np.allclose(z.std(axis=1), 1.0, atol=1e-4)
    same, one = normalize(x, np.ones(12, bool), mode="none")
    assert same is not None and np.array_equal(same, x) and float(one) == 1.0
    _, silent = normalize(np.zeros((12, 10), np.float32), np.ones(12, bool))
    assert float(silent) == 1.0


# ---------------------------------------------------------------------------- repair
def test_repair_bridges_short_gaps_linearly_and_drops_bad_leads():
    fs = 100.0
    t = np.arange(1000, dtype=np.float64)
    x = np.stack([np.sin(t / 50), 0.01 * t, np.sin(t / 30), np.full(1000, 2.0), np.sin(t / 20)])
    x[1, 200:230] = np.nan  # 0.3 s: bridged; the ramp is linear, so exactly
    x[1, -5:] = np.inf  # trailing gap: held at the last value
    x[2, 100:200] = np.nan  # 1 s: too long
    x[4] = np.nan
    out, present, flags = repair_nonfinite(x, fs, 0.5, names=["a", "b", "c", "d", "e"])
    assert np.isfinite(out).all()
    assert np.allclose(out[1, 200:230], 0.01 * t[200:230])
    assert np.allclose(out[1, -5:], 0.01 * 994)
    assert present.tolist() == [True, True, False, False, False]
    assert set(flags) == {"nan_repaired", "nan_lead:c", "nan_lead:e", "flat_lead:d"}
    assert np.all(out[~present] == 0)
    assert np.isnan(x[1, 200])  # the input is not modified


# ---------------------------------------------------------------------------- composition
def make_record(fs, seconds, present=None):
    rng = np.random.default_rng(1)
    t = np.arange(int(fs * seconds)) / fs
    signal = (np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.5, 2, (12, 1))).astype(np.float32)
    present = np.ones(12, bool) if present is None else present
    signal[~present] = 0
    return Record(id="r", path=None, signal=signal, present=present, fs=fs, flags=["x"], meta={})


def test_preprocess_shapes_rate_and_absent_leads():
    present = np.ones(12, bool)
    present[[3, 9]] = False
    record = make_record(500.0, 12.0, present)
    data = DataSettings()
    out, pres, flags = preprocess(record, data)
    assert out.shape == (12, data.n_samples) and out.dtype == np.float32
    assert np.array_equal(pres, present) and np.all(out[~present] == 0)
    assert flags == ["x"]
    expected = bandpass(resample(record.signal[present], 500.0, 100.0), 100.0)[:, :1000]
    assert np.allclose(out[present], expected, atol=1e-5)


def test_preprocess_pads_short_and_crops_center():
    data = DataSettings(window_policy="center")
    out, _, flags = preprocess(make_record(500.0, 4.0), data)
    assert "padded" in flags and np.all(out[:, 400:] == 0) and np.any(out[:, :400] != 0)
    long = make_record(250.0, 30.0)
    out, _, flags = preprocess(long, data)
    full = bandpass(resample(long.signal, 250.0, 100.0), 100.0)
    assert "padded" not in flags and np.allclose(out, full[:, 1000:2000], atol=1e-5)
