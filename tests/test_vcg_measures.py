"""VCG measures against closed-form fields: rectangular QRS/ST/T vectors at known R peaks."""

from __future__ import annotations

import numpy as np
import torch

from lvcg_cli.model.vcg_measures import QRS_WINDOW_S, ST_WINDOW_S, T_WINDOW_S, VCG_MEASURES, vcg_measures

FS, T = 100.0, 1000


def _field(qrs: np.ndarray, st: np.ndarray, t_wave: np.ndarray, rpeaks: list[int]) -> np.ndarray:
    """A (3, T) field that is exactly ``qrs`` over each QRS window, ``st`` over ST, ``t`` over T."""
    f = np.zeros((3, T))
    for r in rpeaks:
        for vec, (lo, hi) in ((qrs, QRS_WINDOW_S), (st, ST_WINDOW_S), (t_wave, T_WINDOW_S)):
            f[:, r + round(lo * FS) : r + round(hi * FS) + 1] = vec[:, None]
    return f


def _segments(rpeaks: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    bounds = [[r - 40, r + 60] for r in rpeaks]
    return torch.tensor([rpeaks]), torch.tensor([bounds])


def test_vectors_angles_and_amplitudes_of_a_known_field():
    qrs, st, t_wave = np.array([0.6, 0.9, -0.3]), np.array([0.05, -0.02, 0.01]), np.array([0.2, 0.25, 0.1])
    rpeaks = [100, 200, 300, 400, 500, 600, 700, 800]
    field = torch.as_tensor(_field(qrs, st, t_wave, rpeaks), dtype=torch.float32)[None]
    r, bounds = _segments(rpeaks)
    got = dict(
        zip(
            VCG_MEASURES,
            vcg_measures(field, r, bounds, torch.ones(1, 8, dtype=torch.bool), FS)[0].tolist(),
            strict=True,
        )
    )
    np.testing.assert_allclose([got["qrs_vec_x"], got["qrs_vec_y"], got["qrs_vec_z"]], qrs, atol=1e-6)
    np.testing.assert_allclose([got["qrs_peak_x"], got["qrs_peak_y"], got["qrs_peak_z"]], qrs, atol=1e-6)
    np.testing.assert_allclose(got["qrs_peak_mv"], np.linalg.norm(qrs), atol=1e-6)
    np.testing.assert_allclose([got["st_vec_x"], got["st_vec_y"], got["st_vec_z"]], st, atol=1e-6)
    # the T window runs to +0.40 s but each beat ends at +0.60 s: the window is all T wave
    np.testing.assert_allclose([got["t_vec_x"], got["t_vec_y"], got["t_vec_z"]], t_wave, atol=1e-6)
    np.testing.assert_allclose(got["t_peak_mv"], np.linalg.norm(t_wave), atol=1e-6)
    cos = qrs @ t_wave / np.linalg.norm(qrs) / np.linalg.norm(t_wave)
    np.testing.assert_allclose(got["qrs_t_cos"], cos, atol=1e-6)
    axis = np.arctan2(qrs[1], qrs[0])  # y inferior: +56 degrees, a normal axis
    np.testing.assert_allclose(
        [got["qrs_axis_cos"], got["qrs_axis_sin"]], [np.cos(axis), np.sin(axis)], atol=1e-6
    )
    rms = np.sqrt((_field(qrs, st, t_wave, rpeaks) ** 2).sum(0).mean())
    np.testing.assert_allclose(got["log_rms_mv"], np.log(rms + 1e-3), atol=1e-5)


def test_left_axis_deviation_has_a_negative_frontal_sine():
    """An axis of -60 degrees (superior-left): sin < -0.5, the LAD criterion the docstring promises."""
    qrs = np.array([np.cos(np.deg2rad(-60)), np.sin(np.deg2rad(-60)), 0.0])
    rpeaks = [150, 350, 550]
    field = torch.as_tensor(_field(qrs, 0 * qrs, 0.2 * qrs, rpeaks), dtype=torch.float32)[None]
    r, bounds = _segments(rpeaks)
    got = dict(
        zip(
            VCG_MEASURES,
            vcg_measures(field, r, bounds, torch.ones(1, 3, dtype=torch.bool), FS)[0].tolist(),
            strict=True,
        )
    )
    assert got["qrs_axis_sin"] < -0.5 and np.isclose(got["qrs_axis_sin"], -np.sqrt(3) / 2, atol=1e-6)


def test_windows_stay_inside_their_beat_and_only_weighted_beats_count():
    qrs = np.array([1.0, 0.0, 0.0])
    rpeaks = [100, 200]
    f = _field(qrs, 0 * qrs, 0 * qrs, rpeaks)
    f[:, 205:260] = 5.0  # beat 2's T window, not beat 1's: beat 1 ends at 160
    field = torch.as_tensor(f, dtype=torch.float32)[None]
    r = torch.tensor([rpeaks])
    bounds = torch.tensor([[[60, 160], [160, 260]]])
    only_first = vcg_measures(field, r, bounds, torch.tensor([[True, False]]), FS)[0]
    t_x = VCG_MEASURES.index("t_vec_x")
    assert only_first[t_x] == 0.0  # beat 1's T window [116, 140] holds zeros and is cut at 160
    both = vcg_measures(field, r, bounds, torch.tensor([[True, True]]), FS)[0]
    assert both[t_x] > 1.0  # beat 2's T window is inside its own beat and holds the 5 mV plateau


def test_no_beat_gives_zeros_not_nan():
    field = torch.randn(2, 3, T)
    r = torch.zeros(2, 4, dtype=torch.long)
    bounds = torch.zeros(2, 4, 2, dtype=torch.long)
    out = vcg_measures(field, r, bounds, torch.zeros(2, 4, dtype=torch.bool), FS)
    assert torch.isfinite(out).all()
    assert (out[:, 1:] == 0).all()  # every beat measure is 0; log RMS is still the record's amplitude
