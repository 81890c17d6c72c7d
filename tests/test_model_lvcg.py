"""The assembled LVCG model on simulated records built through the real sample pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvcg_cli.datasets.simulator import simulate
from lvcg_cli.model.lvcg import LVCG, RHYTHM_FEATURES, VCG_MEASURES, complete_beats
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import DataSettings, LossWeights, ModelSettings
from lvcg_cli.signals.model_input import make_batch

DATA = DataSettings(window_s=4.0)
SMALL = ModelSettings(
    name="lvcg-tiny",
    beat_len=32,
    max_beats=6,
    d_token=8,
    encoder_channels=[8, 16],
    lifter_channels=8,
    lifter_layers=2,
    state_dim=12,
    gru_layers=2,
    residual_refine=False,
)
T = DATA.n_samples


@pytest.fixture(scope="module")
def signals() -> np.ndarray:
    return simulate(4, seed=3, fs=DATA.fs, duration_s=DATA.window_s).signals


def _batch(signals: np.ndarray, visible_idx=(0, 1, 7)) -> dict[str, torch.Tensor]:
    vis = np.zeros(12, dtype=bool)
    vis[list(visible_idx)] = True
    return make_batch(signals, np.ones(12, dtype=bool), vis, DATA, SMALL)


def _model(seed: int = 0, **overrides) -> LVCG:
    torch.manual_seed(seed)
    model = build_model(SMALL.model_copy(update=overrides), DATA)
    # Make the zero-initialised lifter output active, so tests exercise the learned path too.
    torch.nn.init.normal_(model.lifter.out.weight, std=0.1)
    return model.eval()


@pytest.mark.parametrize("visible_idx", [(0,), (0, 1, 7), tuple(range(8)), tuple(range(12))])
def test_forward_shapes_and_finite(signals, visible_idx):
    model, batch = _model(), _batch(signals, visible_idx)
    out = model(batch)
    b, k, L = 4, SMALL.max_beats, SMALL.beat_len
    expect = {
        "recon": (b, 12, T),
        "decoded": (b, 12, T),
        "field": (b, 3, T),
        "lifted": (b, 3, T),
        "beats_in": (b, k, 3, L),
        "beats_out": (b, k, 3, L),
        "tokens": (b, k, 1, 8),
        "states": (b, k, 12),
        "next_pred": (b, k, 8),
        "coverage": (b, T),
    }
    for key, shape in expect.items():
        assert tuple(out[key].shape) == shape, key
        assert torch.isfinite(out[key].float()).all(), key
    emb = model.embed(batch)
    assert emb.shape == (b, model.embedding_dim) == (b, 8 + 12 + len(RHYTHM_FEATURES) + len(VCG_MEASURES))
    losses = model.loss(batch, out, LossWeights())
    assert all(torch.isfinite(v) for v in losses.values())
    # without refinement the recon is exactly the fixed projection of the decoded field
    torch.testing.assert_close(out["recon"], model.lead_field.project(out["field"]))
    torch.testing.assert_close(out["recon"], out["decoded"])
    # uncovered samples keep the lifted field; covered ones come from the decoded beats
    cov = out["coverage"].unsqueeze(1).expand(-1, 3, -1)
    torch.testing.assert_close(out["field"][~cov], out["lifted"][~cov])


@pytest.mark.parametrize("n_beats", [0, 1])
def test_records_with_one_or_no_beat(signals, n_beats):
    model, batch = _model(), _batch(signals)
    batch["beat_mask"][:] = False
    batch["beat_mask"][:, :n_beats] = True
    batch["rr"][:, n_beats:] = 0.0
    model.train()
    out = model(batch)
    losses = model.loss(batch, out, LossWeights())
    assert torch.isfinite(losses["total"]) and losses["temporal"] == 0.0
    losses["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    emb = model.eval().embed(batch)
    assert torch.isfinite(emb).all()
    if n_beats == 0:
        torch.testing.assert_close(out["field"], out["lifted"])  # nothing covered: the lift itself
        lay = model.embedding_layout()
        assert emb[:, lay["morphology"]].abs().max() == 0 and emb[:, lay["dynamics"]].abs().max() == 0


def test_hidden_leads_never_change_outputs(signals):
    model, batch = _model(), _batch(signals)
    ref, emb = model(batch), model.embed(batch)
    changed = {k: v.clone() for k, v in batch.items()}
    hidden = ~changed["visible"]
    changed["signal"][hidden] = torch.randn(int(hidden.sum()), T) * 10
    changed["target"] = torch.randn_like(changed["target"])  # targets are loss-only
    out = model(changed)
    for key in ("recon", "field", "lifted", "tokens", "states", "next_pred"):
        torch.testing.assert_close(out[key], ref[key], msg=key)
    torch.testing.assert_close(model.embed(changed), emb)


def test_padded_beats_never_change_outputs(signals):
    model, batch = _model(), _batch(signals)
    mask = batch["beat_mask"]
    assert (~mask).any(), "fixture should have padded beats"
    ref, emb = model(batch), model.embed(batch)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["bounds"][~mask] = torch.tensor([3, 150])
    changed["rr"][~mask] = 9.0
    out = model(changed)
    for key in ("recon", "field", "tokens", "states", "beats_out"):
        torch.testing.assert_close(out[key], ref[key], msg=key)
    torch.testing.assert_close(model.embed(changed), emb)
    torch.testing.assert_close(
        model.loss(changed, out, LossWeights())["total"], model.loss(batch, ref, LossWeights())["total"]
    )


def test_embed_is_deterministic_and_per_record(signals):
    model = _model(dropout=0.3)
    batch = _batch(signals)
    a, b = model.embed(batch), model.embed(batch)
    assert torch.equal(a, b)
    one = model.embed({k: v[1:2] for k, v in batch.items()})
    torch.testing.assert_close(one[0], a[1], atol=1e-5, rtol=1e-5)  # no batch coupling


def test_embedding_components_match_their_definitions(signals):
    model, batch = _model(), _batch(signals)
    with torch.no_grad():
        out, emb = model(batch), model.embed(batch)
    lay = model.embedding_layout()
    assert [lay[n] for n in ("morphology", "dynamics", "rhythm", "vcg")] == [
        slice(0, 8),
        slice(8, 20),
        slice(20, 28),
        slice(28, 48),
    ]
    names = model.embedding_names
    assert len(names) == model.embedding_dim == emb.shape[1] and len(set(names)) == len(names)
    assert names[:2] == ["morph_0", "morph_1"] and names[8] == "dyn_0" and names[20] == "rr_mean"
    assert names[28:] == list(VCG_MEASURES) and "qrs_vec_x" in names
    for i in range(4):
        m = batch["beat_mask"][i].numpy()
        lo, hi = batch["bounds"][i, :, 0].numpy(), batch["bounds"][i, :, 1].numpy()
        whole = m & (lo > 0) & (hi < T)  # beats the window edges did not cut
        assert whole.any()
        np.testing.assert_allclose(emb[i, :8].numpy(), out["tokens"][i, whole, 0].mean(0).numpy(), atol=1e-5)
        last_whole = int(np.flatnonzero(whole)[-1])
        np.testing.assert_allclose(emb[i, 8:20].numpy(), out["states"][i, last_whole].numpy(), atol=1e-6)
        rr = batch["rr"][i, m].numpy().astype(np.float64)
        n = int(m.sum())
        d = np.abs(np.diff(rr[1:]))
        want = [
            rr.mean(),
            rr.std(),
            np.sqrt(np.mean(d**2)),
            np.mean(d > 0.05),
            rr.min(),
            rr.max(),
            rr.std() / rr.mean(),
            n / SMALL.max_beats,
        ]
        np.testing.assert_allclose(emb[i, 20:28].numpy(), want, rtol=1e-4, atol=1e-6)


def test_complete_beats_fall_back_to_every_valid_beat():
    bounds = torch.tensor([[[0, 10], [10, 30], [30, 40]], [[0, 40], [0, 40], [0, 40]]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    got = complete_beats(bounds, mask, 40)
    assert got.tolist() == [[False, True, False], [True, False, False]]


def test_vcg_block_is_in_mv_and_the_tokens_ignore_amplitude(signals):
    """Scaling a record by 3 leaves the learned blocks unchanged and scales the VCG vectors by 3."""
    model = _model()
    lay = model.embedding_layout()
    small, big = _batch(signals), _batch(signals * 3.0)
    with torch.no_grad():
        a, b = model.embed(small), model.embed(big)
    learned = slice(0, lay["rhythm"].stop)
    torch.testing.assert_close(a[:, learned], b[:, learned], atol=1e-4, rtol=1e-4)
    vcg = {name: lay["vcg"].start + k for k, name in enumerate(VCG_MEASURES)}
    for name in ("qrs_vec_x", "qrs_peak_mv", "t_vec_y", "st_vec_z", "t_peak_mv"):
        torch.testing.assert_close(b[:, vcg[name]], 3.0 * a[:, vcg[name]], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(
        b[:, vcg["log_rms_mv"]] - a[:, vcg["log_rms_mv"]], torch.full((4,), np.log(3.0)), atol=0.02, rtol=0
    )
    for name in ("qrs_t_cos", "qrs_axis_cos", "qrs_axis_sin"):  # directions do not scale
        torch.testing.assert_close(b[:, vcg[name]], a[:, vcg[name]], atol=1e-4, rtol=1e-4)


def test_geometry_buffer_is_fixed_and_a_few_steps_overfit(signals):
    torch.manual_seed(0)
    model = build_model(SMALL, DATA).train()
    batch = _batch(signals)
    geometry = model.lead_field.matrix.clone()
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("lead_field") for n in names)
    assert "lead_field.matrix" in model.state_dict()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    weights = LossWeights()
    first = None
    for _ in range(25):
        losses = model.loss(batch, model(batch), weights)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in losses.items()}
    last = {k: float(v.detach()) for k, v in model.loss(batch, model(batch), weights).items()}
    assert model.lead_field.matrix.grad is None and not model.lead_field.matrix.requires_grad
    assert torch.equal(model.lead_field.matrix, geometry)
    assert last["total"] < 0.7 * first["total"], (first, last)
    assert last["hidden"] < first["hidden"] and last["beat"] < first["beat"]


def test_residual_refine_starts_as_projection_and_cannot_bypass_the_tokens(signals):
    model, batch = _model(residual_refine=True), _batch(signals)
    out = model(batch)
    torch.testing.assert_close(out["recon"], model.lead_field.project(out["field"]))  # zero-init
    torch.nn.init.normal_(model.refine.net[-1].weight, std=0.1)
    out = model(batch)
    assert not torch.allclose(out["recon"], out["decoded"])
    torch.testing.assert_close(out["decoded"], model.lead_field.project(out["field"]))
    # the refinement reads the decoded projection and flags only: with the tokens (hence the
    # decoded field) held fixed, changing the *visible* leads' samples cannot change recon
    torch.testing.assert_close(out["recon"], model.refine(out["decoded"], batch["visible"]))
    changed = {k: v.clone() for k, v in batch.items()}
    changed["signal"][~changed["visible"]] = 7.0
    torch.testing.assert_close(model(changed)["recon"], out["recon"])


@pytest.mark.parametrize("n_beats", [0, 2, None])
def test_dense_beat_path_equals_the_compact_one(signals, n_beats):
    """Accelerators compute every beat slot (no nonzero, no host sync); the CPU only the valid ones."""
    model, batch = _model(), _batch(signals)
    if n_beats is not None:
        batch["beat_mask"][:] = False
        batch["beat_mask"][:, :n_beats] = True
    with torch.no_grad():
        compact, emb = model(batch), model.embed(batch)
        model.dense_beats = True
        dense, emb_dense = model(batch), model.embed(batch)
    for key in ("tokens", "states", "beats_out", "recon"):
        torch.testing.assert_close(dense[key], compact[key], atol=1e-5, rtol=1e-5, msg=key)
    torch.testing.assert_close(emb_dense, emb, atol=1e-5, rtol=1e-5)


def test_the_invariance_term_cannot_switch_the_gru_off(signals):
    """Only the tokens are held to the reference: the GRU gets no gradient from the term (a relative
    error between states lets the GRU zero every state, which killed the dynamics block once)."""
    model, batch = _model(), _batch(signals)
    model.train()
    only = LossWeights(hidden=0, visible=0, lift=0, beat=0, temporal=0, invariance=1.0)
    losses = model.loss(batch, model(batch), only)
    losses["total"].backward()
    assert float(losses["invariance"]) > 0
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.dynamics.parameters())
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.encoder.parameters())
