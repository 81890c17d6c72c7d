"""Each loss term against an independent computation on a tiny hand-built example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvcg_cli.model.geometry import lead_field_matrix
from lvcg_cli.model.losses import LOSS_TERMS, lvcg_losses, masked_mean
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import LossWeights, ModelSettings

B, K, L, T, D = 2, 3, 16, 40, 4


def _model():
    torch.manual_seed(0)
    settings = ModelSettings(
        beat_len=L, max_beats=K, d_token=D, encoder_channels=[4, 8], lifter_layers=0, state_dim=4
    )
    return build_model(settings).eval()


def _example(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    present = torch.ones(B, 12, dtype=torch.bool)
    present[1, 11] = False  # record 1 lacks V6
    visible = torch.zeros(B, 12, dtype=torch.bool)
    visible[0, [0, 1, 7]] = True
    visible[1, [0, 6, 8, 9]] = True
    batch = {
        "target": torch.randn(B, 12, T, generator=g) * present.unsqueeze(-1),
        "present": present,
        "visible": visible,
        "bounds": torch.tensor([[[0, 10], [10, 25], [25, 38]], [[5, 30], [5, 30], [5, 30]]]),
        "beat_mask": torch.tensor([[True, True, True], [True, False, False]]),
    }
    out = {
        "recon": torch.randn(B, 12, T, generator=g),
        "lifted": torch.randn(B, 3, T, generator=g),
        "beats_out": torch.randn(B, K, 3, L, generator=g),
        "tokens": torch.randn(B, K, 1, D, generator=g),
        "next_pred": torch.randn(B, K, D, generator=g),
    }
    return batch, out


def test_each_term_matches_a_direct_computation():
    batch, out = _example()
    weights = LossWeights(hidden=1.0, visible=0.3, lift=0.7, beat=0.5, temporal=0.2, invariance=0.4)
    model = _model()
    got = lvcg_losses(batch, out, weights, model=model)
    assert set(got) == {"total", *LOSS_TERMS}
    tgt, rec = batch["target"].numpy().astype(np.float64), out["recon"].numpy().astype(np.float64)
    pres, vis = batch["present"].numpy(), batch["visible"].numpy()
    hid_err, vis_err, lift_err = [], [], []
    m = lead_field_matrix("dower")
    proj = np.einsum("lc,bct->blt", m, out["lifted"].numpy().astype(np.float64))
    for b in range(B):
        for lead in range(12):
            if pres[b, lead] and not vis[b, lead]:
                hid_err += list((rec[b, lead] - tgt[b, lead]) ** 2)
                lift_err += list((proj[b, lead] - tgt[b, lead]) ** 2)
            elif pres[b, lead]:
                vis_err += list((rec[b, lead] - tgt[b, lead]) ** 2)
    assert len(hid_err) == (9 + 7) * T
    np.testing.assert_allclose(float(got["hidden"]), np.mean(hid_err), rtol=1e-5)
    np.testing.assert_allclose(float(got["visible"]), np.mean(vis_err), rtol=1e-5)
    np.testing.assert_allclose(float(got["lift"]), np.mean(lift_err), rtol=1e-4)

    # beat term: least-squares field of the present leads, cut with np.interp, valid beats only
    beat_err, inv_err = [], []
    for b in range(B):
        rows = pres[b]
        field = np.linalg.lstsq(m[rows], tgt[b, rows], rcond=None)[0]  # (3, T), ridge eps is tiny
        rms = np.sqrt(np.mean(field**2))
        for k in range(K):
            if not batch["beat_mask"][b, k]:
                continue
            s, e = batch["bounds"][b, k].tolist()
            pos = np.linspace(s, e - 1, L)
            ref = np.stack([np.interp(pos, np.arange(T), field[c]) for c in range(3)])
            beat_err += list(((out["beats_out"][b, k].numpy() - ref) ** 2).ravel())
            # invariance: the view's tokens vs the encoder's tokens of the RMS-normalised reference beat
            with torch.no_grad():
                ref_token = model.encoder(torch.as_tensor(ref / rms, dtype=torch.float32)[None])[0, 0].numpy()
            tok = out["tokens"][b, k, 0].numpy()
            inv_err.append((((tok - ref_token) ** 2).sum(), (ref_token**2).sum()))
    np.testing.assert_allclose(float(got["beat"]), np.mean(beat_err), rtol=2e-3)
    # relative errors pooled over the valid beats: sum |a - b|^2 / sum |b|^2 (tokens only: see losses.py)
    pooled = lambda pairs: sum(e for e, _ in pairs) / (sum(n for _, n in pairs) + 1e-6)  # noqa: E731
    np.testing.assert_allclose(float(got["invariance"]), pooled(inv_err), rtol=5e-3)

    # temporal: pairs (k, k+1) both valid -> only record 0, k = 0, 1
    tok = out["tokens"].numpy()[:, :, 0]
    pred = out["next_pred"].numpy()
    temporal = sum(((pred[0, k] - tok[0, k + 1]) ** 2).sum() for k in range(2)) / sum(
        (tok[0, k + 1] ** 2).sum() for k in range(2)
    )
    np.testing.assert_allclose(float(got["temporal"]), temporal, rtol=1e-5)

    total = sum(getattr(weights, k) * float(got[k]) for k in LOSS_TERMS)
    np.testing.assert_allclose(float(got["total"]), total, rtol=1e-5)


def test_empty_terms_are_zero_and_finite_and_targets_are_stop_gradient():
    batch, out = _example()
    batch["visible"][:] = True  # nothing hidden
    batch["beat_mask"][:] = False  # no beats, no pairs
    out = {k: v.requires_grad_() for k, v in out.items()}
    got = lvcg_losses(batch, out, LossWeights(), model=_model())
    assert got["hidden"] == 0 and got["lift"] == 0 and got["beat"] == 0 and got["temporal"] == 0
    assert got["invariance"] == 0
    assert torch.isfinite(got["total"]) and got["visible"] > 0
    got["total"].backward()
    assert torch.isfinite(out["recon"].grad).all()

    batch, out = _example()
    out = {k: v.requires_grad_() for k, v in out.items()}
    lvcg_losses(
        batch,
        out,
        LossWeights(hidden=0, visible=0, lift=0, beat=0, temporal=1.0, invariance=0),
        model=_model(),
    )["total"].backward()
    assert out["tokens"].grad is None  # the next-beat target is detached
    assert out["next_pred"].grad.abs().sum() > 0


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert masked_mean(x, torch.tensor([[True], [False]])) == 2.0
    assert masked_mean(x, torch.zeros(2, 1, dtype=torch.bool)) == 0.0
    assert masked_mean(torch.tensor([float("nan"), 1.0]), torch.tensor([False, True])) == 1.0


def test_a_near_zero_target_token_does_not_blow_up_the_relative_terms():
    """Pooled over the batch: one flat beat's tiny reference token cannot dominate the loss."""
    from lvcg_cli.model.losses import relative_error

    target = torch.ones(2, 3, 4)
    target[0, 1] = 1e-8  # a flat beat
    pred = target + 0.1
    mask = torch.ones(2, 3, dtype=torch.bool)
    got = float(relative_error(pred, target, mask))
    assert got == pytest.approx(6 * 4 * 0.01 / (5 * 4), rel=1e-4)  # per-vector ratios would give ~1e13
    mask[1] = False
    assert float(relative_error(pred, target, mask)) == pytest.approx(3 * 4 * 0.01 / (2 * 4), rel=1e-4)
    assert float(relative_error(pred, target, torch.zeros_like(mask))) == 0.0
