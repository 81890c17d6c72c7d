"""The median beat and its QRS and T loops, against closed-form truths and the simulator's own timing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from lvcg_cli.downstream.vcg import QRS_VELOCITY_FRACTION, T_END_FRACTION, median_beat
from lvcg_cli.errors import LvcgError

FS = 250.0
QRS_SD = 0.012  # s
T_AT, T_SD = 0.30, 0.04  # s after R


def gaussian(t: np.ndarray, centre: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / sd) ** 2)


def beats_field(n_beats: int = 8, rr: float = 1.0, rotate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Identical beats: a Gaussian QRS (a fixed direction, or a vector turning counter-clockwise in
    the x-y plane) and a Gaussian T wave; returns the (3, T) field and the R-peak samples."""
    n = int(round((n_beats + 1) * rr * FS))
    t = np.arange(n) / FS
    rpeaks = np.round((np.arange(n_beats) + 0.5) * rr * FS).astype(int)
    field = np.zeros((3, n))
    for r in rpeaks:
        local = t - r / FS
        qrs = 1.2 * gaussian(local, 0.0, QRS_SD)
        angle = np.clip(local / (3 * QRS_SD), -1, 1) * np.pi / 2 if rotate else np.zeros_like(local)
        field[0] += qrs * np.cos(angle)
        field[1] += qrs * np.sin(angle)
        field[2] += 0.3 * gaussian(local, T_AT, T_SD)
    return field, rpeaks


def test_identical_beats_give_the_beat_and_an_artefact_in_one_beat_is_ignored():
    field, rpeaks = beats_field()
    clean = median_beat(field, FS, rpeaks)
    spoiled = field.copy()
    spoiled[:, rpeaks[3] - 20 : rpeaks[3] + 20] += 5.0  # a big artefact over one QRS
    robust = median_beat(spoiled, FS, rpeaks)
    np.testing.assert_allclose(robust.samples, clean.samples, atol=1e-9)
    assert clean.n_beats == len(rpeaks) and clean.fs == 500.0  # upsampled to >= 500 Hz
    peak = clean.samples[:, clean.r]
    assert peak == pytest.approx([1.2, 0.0, 0.3 * np.exp(-0.5 * (T_AT / T_SD) ** 2)], abs=1e-3)


def test_a_constant_offset_is_removed_loops_start_at_the_origin():
    field, rpeaks = beats_field()
    shifted = median_beat(field + np.array([[0.4], [-0.2], [0.1]]), FS, rpeaks)
    plain = median_beat(field, FS, rpeaks)
    # (the polyphase upsampler's phases pass a constant with gains equal to within 1e-3)
    np.testing.assert_allclose(shifted.samples, plain.samples, atol=1e-3)
    assert np.linalg.norm(plain.loop("QRS")[:, 0]) < 0.05 * 1.2


def test_qrs_window_is_where_the_vector_moves_faster_than_a_tenth_of_its_peak_speed():
    """Closed form for a Gaussian QRS of sd s: speed |g'(t)| = |t|/s^2 exp(-t^2/2s^2) peaks at |t| = s,
    and falls to the threshold fraction at |t| = u s with u exp(-(u^2-1)/2) = fraction."""
    field, rpeaks = beats_field()
    beat = median_beat(field, FS, rpeaks)
    u = brentq(lambda u: u * np.exp(-(u * u - 1) / 2) - QRS_VELOCITY_FRACTION, 1.0, 10.0)
    expected_ms = 2 * u * QRS_SD * 1000
    assert beat.duration_ms("QRS") == pytest.approx(expected_ms, abs=8.0)  # 10-ms speed smoothing
    assert beat.time_ms[beat.qrs[0]] == pytest.approx(-expected_ms / 2, abs=5.0)


def test_t_loop_runs_from_the_j_point_to_where_the_t_wave_has_fallen_to_its_end_fraction():
    field, rpeaks = beats_field()
    beat = median_beat(field, FS, rpeaks)
    assert beat.t[0] == beat.qrs[1]  # the T loop starts at the J point
    t_end_ms = 1000 * (T_AT + T_SD * np.sqrt(2 * np.log(1 / T_END_FRACTION)))
    assert beat.time_ms[beat.t[1]] == pytest.approx(t_end_ms, abs=4.0)


def test_the_loop_keeps_the_direction_of_time():
    """A QRS vector turning counter-clockwise in x-y has a positive signed (shoelace) area."""
    field, rpeaks = beats_field(rotate=True)
    loop = median_beat(field, FS, rpeaks).loop("QRS")
    x, y = loop[0], loop[1]
    area = 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])
    assert area > 0.05
    mirrored = median_beat(field * np.array([[1.0], [-1.0], [1.0]]), FS, rpeaks).loop("QRS")
    assert 0.5 * np.sum(mirrored[0, :-1] * mirrored[1, 1:] - mirrored[0, 1:] * mirrored[1, :-1]) < -0.05


def test_qrs_durations_follow_the_simulators_on_true_and_on_noisy_lifted_fields():
    from lvcg_cli.datasets.simulator import simulate
    from lvcg_cli.signals.preprocess import bandpass

    sim = simulate(40, seed=3, fs=100.0, noise=True)
    truth = sim.params["qrs_ms"]
    exact = np.array([median_beat(sim.vcg[i], 100.0, sim.rpeaks[i]).duration_ms("QRS") for i in range(40)])
    # the simulator's QRS spans its Gaussians' +-2.5 sd; the speed threshold ends a little inside
    assert np.corrcoef(exact, truth)[0, 1] > 0.9 and abs(np.mean(exact - truth)) < 20
    lifted = [
        bandpass(np.linalg.pinv(sim.lead_fields[i]) @ sim.signals[i], 100.0, (0.67, 40.0)) for i in range(40)
    ]
    noisy = np.array([median_beat(f, 100.0).duration_ms("QRS") for f in lifted])  # R peaks detected too
    assert np.corrcoef(noisy, truth)[0, 1] > 0.75 and np.mean(np.abs(noisy - truth)) < 25


def test_no_complete_beat_is_a_one_line_error():
    field, _ = beats_field(n_beats=1)
    with pytest.raises(LvcgError, match="no complete beat"):
        median_beat(field[:, :200], FS, np.array([100]))
    with pytest.raises(LvcgError, match=r"\(3, T\)"):
        median_beat(field[:2], FS)
