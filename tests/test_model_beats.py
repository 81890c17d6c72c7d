"""Cutting a field into beats and stitching beats back (model/beats.py) against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvcg_cli.model.beats import beat_positions, cut_beats, stitch_beats


def _bounds(rows: list[list[tuple[int, int]]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-record beat lists -> padded (B, K, 2) bounds (padding repeats the last row) and masks."""
    b = torch.zeros(len(rows), k, 2, dtype=torch.long)
    m = torch.zeros(len(rows), k, dtype=torch.bool)
    for i, beats in enumerate(rows):
        for j in range(k):
            b[i, j] = torch.tensor(beats[min(j, len(beats) - 1)])
        m[i, : len(beats)] = True
    return b, m


def test_cut_matches_numpy_interp():
    torch.manual_seed(0)
    field = torch.randn(2, 3, 200)
    bounds, mask = _bounds([[(10, 90), (90, 170)], [(0, 57)]], k=3)
    beats = cut_beats(field, bounds, 64, mask)
    assert beats.shape == (2, 3, 3, 64)
    for b, k in [(0, 0), (0, 1), (1, 0)]:
        s, e = bounds[b, k].tolist()
        pos = np.linspace(s, e - 1, 64)
        for c in range(3):
            want = np.interp(pos, np.arange(200), field[b, c].numpy())
            np.testing.assert_allclose(beats[b, k, c].numpy(), want, atol=1e-4)
    assert beats[1, 1:].abs().max() == 0  # padded beats are zeros
    assert beats[0, 2].abs().max() == 0


def test_positions_endpoints():
    bounds = torch.tensor([[[5, 25], [7, 8]]])
    pos = beat_positions(bounds, 16)
    assert pos[0, 0, 0] == 5 and pos[0, 0, -1] == 24
    assert torch.all(pos[0, 1] == 7)  # a one-sample segment reads that sample


def test_cut_then_stitch_round_trip_on_covered_samples():
    # A smooth field (band-limited like a 100 Hz ECG) is resampled up (beats longer than L would
    # lose detail), so the round trip is exact to interpolation error.
    t = torch.arange(400, dtype=torch.float32)
    field = torch.stack([torch.sin(t / 7.0), torch.cos(t / 11.0), torch.sin(t / 5.0 + 1)]).unsqueeze(0)
    bounds, mask = _bounds([[(20, 100), (100, 185), (185, 260), (260, 330)]], k=6)
    beats = cut_beats(field, bounds, 128, mask)
    back, covered = stitch_beats(beats, bounds, mask, 400)
    assert covered.sum() == 330 - 20 and covered[0, 20:330].all()
    assert not covered[0, :20].any() and not covered[0, 330:].any()
    err = (back - field)[..., covered[0]].abs().max()
    assert err < 0.01, err
    assert back[..., ~covered[0]].abs().max() == 0  # uncovered samples are zero (the model fills them)


def test_stitch_exact_for_linear_beats():
    # Linear ramps are reproduced exactly by linear interpolation in both directions.
    bounds, mask = _bounds([[(3, 40), (40, 41), (41, 90)]], k=3)
    t = torch.arange(100, dtype=torch.float32)
    field = torch.stack([t, 2 * t + 1, -t]).unsqueeze(0)
    back, covered = stitch_beats(cut_beats(field, bounds, 32, mask), bounds, mask, 100)
    torch.testing.assert_close(back[..., 3:90], field[..., 3:90], atol=1e-4, rtol=0)


def test_padded_beats_contribute_nothing_even_if_nan():
    torch.manual_seed(1)
    bounds, mask = _bounds([[(0, 50), (50, 100)]], k=4)
    beats = torch.randn(1, 4, 3, 32)
    ref, cov = stitch_beats(beats, bounds, mask, 120)
    beats2 = beats.clone()
    beats2[:, 2:] = float("nan")
    bounds2 = bounds.clone()
    bounds2[0, 2:] = torch.tensor([10, 110])  # padded rows pointing anywhere
    out, cov2 = stitch_beats(beats2, bounds2, mask, 120)
    assert torch.equal(out, ref) and torch.equal(cov, cov2)
    assert not cov[0, 100:].any()


def test_overlapping_beats_are_averaged():
    bounds = torch.tensor([[[0, 10], [5, 15]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    beats = torch.stack([torch.full((3, 8), 1.0), torch.full((3, 8), 3.0)]).unsqueeze(0)
    out, cov = stitch_beats(beats, bounds, mask, 20)
    assert (
        torch.all(out[0, :, :5] == 1) and torch.all(out[0, :, 5:10] == 2) and torch.all(out[0, :, 10:15] == 3)
    )
    assert cov[0, :15].all() and not cov[0, 15:].any()


@pytest.mark.parametrize("n_beats", [0, 1])
def test_no_or_one_beat(n_beats):
    bounds = torch.tensor([[[10, 60], [10, 60]]])
    mask = torch.tensor([[n_beats > 0, False]])
    field = torch.randn(1, 3, 80)
    beats = cut_beats(field, bounds, 16, mask)
    back, cov = stitch_beats(beats, bounds, mask, 80)
    assert torch.isfinite(back).all()
    assert int(cov.sum()) == (50 if n_beats else 0)


def test_gradients_flow_through_cut_and_stitch():
    field = torch.randn(1, 3, 64, requires_grad=True)
    bounds = torch.tensor([[[4, 40], [40, 60]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    back, cov = stitch_beats(cut_beats(field, bounds, 32, mask), bounds, mask, 64)
    back.sum().backward()
    g = field.grad[0, 0]
    assert (g[4:60] != 0).all() and (g[:4] == 0).all() and (g[60:] == 0).all()
