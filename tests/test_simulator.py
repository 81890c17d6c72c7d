"""The physiological simulator: its truths, measured independently from the signals it makes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvcg_cli.datasets.simulator import LABEL_NAMES, PREVALENCE, SimulatedECG, simulate
from lvcg_cli.errors import LvcgError
from lvcg_cli.model.geometry import LeadField, lead_field_matrix

FS = 500.0
I, II, III, AVR, AVL, AVF, V1, V5, V6 = 0, 1, 2, 3, 4, 5, 6, 10, 11  # noqa: E741 (lead names)


@pytest.fixture(scope="module")
def clean() -> SimulatedECG:
    return simulate(240, seed=11, fs=FS, noise=False, keep_components=True)


@pytest.fixture(scope="module")
def noisy() -> SimulatedECG:
    return simulate(240, seed=11, fs=FS, noise=True)


def col(sim: SimulatedECG, name: str) -> np.ndarray:
    return sim.labels[:, sim.label_names.index(name)]


def beat_average(x: np.ndarray, rpeaks: np.ndarray, fs: float, before_s: float, after_s: float) -> np.ndarray:
    """Mean of x[..., r - before : r + after] over the R peaks whose window fits."""
    a, b = int(round(before_s * fs)), int(round(after_s * fs))
    keep = [r for r in rpeaks if r - a >= 0 and r + b <= x.shape[-1]]
    return np.mean([x[..., r - a : r + b] for r in keep], axis=0)


# ------------------------------------------------------------------------------------------
# Contract
# ------------------------------------------------------------------------------------------
def test_shapes_dtypes_and_rpeaks(noisy):
    n, t = 240, int(FS * 10)
    assert noisy.signals.shape == (n, 12, t) and noisy.signals.dtype == np.float32
    assert noisy.vcg.shape == (n, 3, t) and noisy.vcg.dtype == np.float32
    assert noisy.labels.shape == (n, len(LABEL_NAMES)) and noisy.labels.dtype == bool
    assert noisy.label_names == LABEL_NAMES and noisy.fs == FS and len(noisy) == n
    assert noisy.lead_fields.shape == (n, 12, 3) and noisy.nondipolar is None
    assert len(noisy.rpeaks) == n
    for r in noisy.rpeaks:
        assert r.dtype.kind == "i" and r.size >= 5
        assert np.all(np.diff(r) >= int(0.3 * FS) - 1) and r.min() >= 0 and r.max() < t
    assert np.isfinite(noisy.signals).all()
    # Amplitudes in the range of real ECGs (mV).
    peak = np.abs(noisy.signals).max(axis=(1, 2))
    assert 0.3 < np.median(peak) < 3.0 and peak.max() < 12


def test_default_rate_and_duration():
    sim = simulate(3, seed=0)
    assert sim.signals.shape == (3, 12, 1000) and sim.fs == 100.0


def test_same_seed_is_bit_identical_and_seeds_differ():
    a = simulate(20, seed=5)
    b = simulate(20, seed=5)
    assert np.array_equal(a.signals, b.signals) and np.array_equal(a.vcg, b.vcg)
    assert np.array_equal(a.labels, b.labels)
    assert all(np.array_equal(x, y) for x, y in zip(a.rpeaks, b.rpeaks, strict=True))
    c = simulate(20, seed=6)
    assert not np.allclose(a.signals, c.signals)


def test_noise_false_is_the_clean_part_of_the_same_records(clean, noisy):
    assert np.array_equal(clean.vcg, noisy.vcg) and np.array_equal(clean.labels, noisy.labels)
    assert all(np.array_equal(x, y) for x, y in zip(clean.rpeaks, noisy.rpeaks, strict=True))
    residual = noisy.signals - clean.signals
    rms = np.sqrt((residual**2).mean(axis=(1, 2)))
    assert np.all(rms > 1e-3) and np.median(rms) < 0.3


def test_bad_arguments_are_clear_errors():
    with pytest.raises(LvcgError, match="fs"):
        simulate(2, fs=20)
    with pytest.raises(LvcgError, match="duration"):
        simulate(2, duration_s=0.5)
    with pytest.raises(LvcgError, match="n must"):
        simulate(-1)


# ------------------------------------------------------------------------------------------
# Physics
# ------------------------------------------------------------------------------------------
def test_clean_signals_are_the_perturbed_lead_field_times_the_vcg_plus_a_small_non_dipolar_part(clean):
    dipolar = np.einsum("nlc,nct->nlt", clean.lead_fields, clean.vcg)
    np.testing.assert_allclose(clean.signals, dipolar + clean.nondipolar, atol=2e-5)
    ratio = np.sqrt((clean.nondipolar**2).mean(axis=(1, 2)) / (clean.signals**2).mean(axis=(1, 2)))
    assert np.all(ratio > 0.005) and np.all(ratio < 0.15)
    # Perturbed, but still Dower-like: per record 3-40 % away from the textbook matrix.
    dower = lead_field_matrix("dower")
    rel = np.linalg.norm(clean.lead_fields - dower, axis=(1, 2)) / np.linalg.norm(dower)
    assert np.all(rel > 0.03) and np.all(rel < 0.4)
    assert np.linalg.norm(clean.lead_fields[0] - clean.lead_fields[1]) > 0.01


def test_simulator_uses_the_geometry_layers_dower_matrix():
    from lvcg_cli.datasets import simulator

    np.testing.assert_array_equal(simulator._DOWER_8, lead_field_matrix("dower")[[0, 1, 6, 7, 8, 9, 10, 11]])


def test_einthoven_and_goldberger_hold_on_noisy_records(noisy):
    x = noisy.signals.astype(np.float64)
    tol = 5e-6  # float32 rounding of mV values
    assert np.abs(x[:, III] - (x[:, II] - x[:, I])).max() < tol
    assert np.abs(x[:, AVR] + (x[:, I] + x[:, II]) / 2).max() < tol
    assert np.abs(x[:, AVL] - (x[:, I] - x[:, II] / 2)).max() < tol
    assert np.abs(x[:, AVF] - (x[:, II] - x[:, I] / 2)).max() < tol


def test_geometry_lift_recovers_the_vcg_but_not_exactly(clean):
    lf = LeadField("dower").double()
    visible = torch.ones(len(clean), 12, dtype=torch.bool)
    lifted = lf.lift(torch.as_tensor(clean.signals[:40], dtype=torch.float64), visible[:40]).numpy()
    truth = clean.vcg[:40].astype(np.float64)
    r = np.array([[np.corrcoef(lifted[i, c], truth[i, c])[0, 1] for c in range(3)] for i in range(40)])
    assert np.median(r) > 0.95
    assert np.all(np.abs(lifted - truth).max(axis=(1, 2)) > 1e-3)  # the perturbation is felt


# ------------------------------------------------------------------------------------------
# Labels, each checked by an independent measurement
# ------------------------------------------------------------------------------------------
def test_prevalences_are_reasonable():
    sim = simulate(2000, seed=3, noise=False)
    prevalence = sim.labels.mean(axis=0)
    for name, p in zip(sim.label_names, prevalence, strict=True):
        assert abs(p - PREVALENCE[name]) < 0.05, name
    assert not np.any(col(sim, "brady") & col(sim, "tachy"))
    assert 0.2 < (~sim.labels.any(axis=1)).mean() < 0.45


def test_heart_rate_from_true_r_peaks_matches_brady_and_tachy(noisy):
    hr = np.array([60.0 * noisy.fs / np.diff(r).mean() for r in noisy.rpeaks])
    np.testing.assert_array_equal(col(noisy, "brady"), hr < 60)
    np.testing.assert_array_equal(col(noisy, "tachy"), hr > 100)
    assert col(noisy, "brady").sum() >= 10 and col(noisy, "tachy").sum() >= 10
    normal_rate = ~(col(noisy, "brady") | col(noisy, "tachy"))
    assert hr[normal_rate].min() > 60 and hr[normal_rate].max() < 100


def test_frontal_axis_from_leads_i_and_avf_matches_lad(clean):
    axes = []
    for x, r in zip(clean.signals, clean.rpeaks, strict=True):
        # The clinical net deflection (tallest positive + deepest negative) of the QRS in I, aVF;
        # unlike the area it is not pulled by an ST plateau inside the window.
        beat = beat_average(x[[I, AVF]], r, clean.fs, 0.1, 0.1)
        qrs = beat.max(axis=-1) + beat.min(axis=-1)
        axes.append(np.degrees(np.arctan2(2 * qrs[1] / np.sqrt(3), qrs[0])))
    axes = np.array(axes)
    lad = col(clean, "lad")
    assert lad.sum() >= 15
    np.testing.assert_array_equal(lad, axes < -30)
    assert np.all(axes[lad] > -100) and np.all(axes[~lad] < 110)


def test_qrs_width_from_the_vcg_matches_wide_qrs(clean):
    widths = []
    for v, r in zip(clean.vcg, clean.rpeaks, strict=True):
        beat = beat_average(v.astype(np.float64), r, clean.fs, 0.09, 0.11)
        speed = np.linalg.norm(np.gradient(beat, axis=-1), axis=0) * clean.fs
        active = np.flatnonzero(speed > 0.1 * speed.max())
        widths.append(1000.0 * (active[-1] - active[0]) / clean.fs)
    widths = np.array(widths)
    wide = col(clean, "wide_qrs")
    assert wide.sum() >= 15
    assert widths[wide].min() > 120 and widths[~wide].max() < 110
    assert np.corrcoef(widths, clean.params["qrs_ms"])[0, 1] > 0.9


def test_afib_rr_is_irregular(noisy):
    cv = np.array([np.diff(r).std() / np.diff(r).mean() for r in noisy.rpeaks])
    af = col(noisy, "afib")
    assert af.sum() >= 15
    assert cv[af].min() > cv[~af].max()
    assert cv[af].mean() > 3 * cv[~af].mean()


def test_afib_has_no_p_waves_but_f_waves(clean):
    """Before each QRS (260-80 ms): a P wave locked to the beat in sinus, unlocked f-waves in AF."""
    af = col(clean, "afib")
    locked, ratio = [], []
    for v, r in zip(clean.vcg.astype(np.float64), clean.rpeaks, strict=True):
        a, b = int(0.26 * clean.fs), int(0.08 * clean.fs)
        segs = np.stack([v[:, k - a : k - b] for k in r if k - a >= 0])
        average = segs.mean(axis=0)  # what is locked to the QRS survives averaging
        locked.append(np.linalg.norm(average, axis=0).max())
        ratio.append(np.sqrt((segs**2).sum(axis=1).mean()) / np.sqrt((average**2).sum(axis=0).mean()))
    locked, ratio = np.array(locked), np.array(ratio)
    assert af.sum() >= 15
    assert np.median(locked[af]) < 0.5 * np.median(locked[~af])
    assert np.median(ratio[af]) > 1.5 and np.median(ratio[~af]) < 1.2


def test_t_inversion_in_ii_and_v5(clean):
    sign = []
    for x, r in zip(clean.signals, clean.rpeaks, strict=True):
        values = []
        for a, b in zip(r[:-1], r[1:], strict=True):
            w = x[[II, V5], a + int(0.12 * clean.fs) : a + int(0.55 * (b - a))]
            values.append(w[np.arange(2), np.abs(w).argmax(axis=-1)])  # the T peak, with its sign
        sign.append(np.mean(values, axis=0))
    sign = np.array(sign)
    # Judged without ST plateaus (they can rival the T peak) and without tachycardia (where the
    # next P wave runs into the T wave, as it does in real tachycardia).
    keep = ~col(clean, "st_elev") & ~col(clean, "tachy")
    t_inv = col(clean, "t_inv")
    assert np.all(sign[keep & t_inv] < 0) and np.all(sign[keep & ~t_inv] > 0)


def test_st_elevation_in_its_territory(clean):
    leads = {0: [6, 7, 8, 9], 1: [II, III, AVF], 2: [I, AVL, V5, V6]}
    st = np.array(
        [
            beat_average(x, r, clean.fs, 0.0, 0.081)[:, -1]
            for x, r in zip(clean.signals, clean.rpeaks, strict=True)
        ]
    )
    elev, narrow = col(clean, "st_elev"), ~col(clean, "wide_qrs")  # wide QRS still runs at R + 80 ms
    territory = clean.params["st_territory"]
    level = np.array([st[i, leads[t]].mean() if t >= 0 else np.nan for i, t in enumerate(territory)])
    assert elev.sum() >= 15
    assert np.all(level[elev & narrow] > 0.1)
    assert np.abs(st[~elev & narrow]).max() < 0.08


def test_lvh_has_high_sokolow_lyon_voltage(clean):
    sokolow = []
    for x, r in zip(clean.signals, clean.rpeaks, strict=True):
        qrs = beat_average(x, r, clean.fs, 0.09, 0.11)
        sokolow.append(-qrs[V1].min() + max(qrs[V5].max(), qrs[V6].max()))
    sokolow = np.array(sokolow)
    lvh = col(clean, "lvh")
    assert np.median(sokolow[lvh]) > 1.7 * np.median(sokolow[~lvh])
    # Rank separation (AUROC) between LVH and the rest.
    pos, neg = sokolow[lvh], sokolow[~lvh]
    auroc = (pos[:, None] > neg[None, :]).mean()
    assert auroc > 0.9
