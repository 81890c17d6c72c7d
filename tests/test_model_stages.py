"""Each model stage on its own: lifter, encoder, dynamics, decoder, refinement, registry."""

from __future__ import annotations

import pytest
import torch

from lvcg_cli.errors import LvcgError
from lvcg_cli.model.decoder import BeatDecoder, ResidualRefine
from lvcg_cli.model.dynamics import BeatDynamics
from lvcg_cli.model.encoder import BeatEncoder
from lvcg_cli.model.geometry import LeadField
from lvcg_cli.model.lifter import LearnedLifter
from lvcg_cli.model.registry import build_model, list_models, model_settings, register_model
from lvcg_cli.settings import DataSettings


def _visible(b: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    vis = torch.zeros(b, 12, dtype=torch.bool)
    for i in range(b):
        vis[i, torch.randperm(12, generator=g)[:n]] = True
    return vis


@pytest.mark.parametrize("n_visible", [1, 3, 8, 12])
def test_lifter_starts_as_physics_and_ignores_hidden_leads(n_visible):
    torch.manual_seed(0)
    lf = LeadField("dower")
    lifter = LearnedLifter(channels=8, layers=2)
    leads, vis = torch.randn(2, 12, 50), _visible(2, n_visible)
    physics = lf.lift(leads, vis)
    out = lifter(leads, vis, physics)
    assert out.shape == (2, 3, 50)
    torch.testing.assert_close(out, physics)  # zero-initialised last layer
    nn_init = torch.nn.init
    nn_init.normal_(lifter.out.weight)  # now it corrects; hidden inputs must still not matter
    changed = leads.masked_fill(vis.unsqueeze(-1), 0.0) * 100 + leads
    a = lifter(leads, vis, physics)
    b = lifter(changed, vis, lf.lift(changed, vis))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, physics)


def test_lifter_zero_layers_is_identity_on_physics():
    lifter = LearnedLifter(layers=0)
    p = torch.randn(1, 3, 10)
    assert lifter(torch.randn(1, 12, 10), torch.ones(1, 12, dtype=torch.bool), p) is p
    assert sum(x.numel() for x in lifter.parameters()) == 0


@pytest.mark.parametrize(("n_tokens", "beat_len"), [(1, 128), (3, 64), (2, 100)])
def test_encoder_decoder_shapes_and_start_as_linear_maps(n_tokens, beat_len):
    enc = BeatEncoder([8, 12, 16], n_tokens=n_tokens, d_token=10, beat_len=beat_len)
    dec = BeatDecoder(n_tokens * 10, [8, 12, 16], beat_len)
    beats = torch.randn(5, 3, beat_len)
    tokens = enc(beats)
    assert tokens.shape == (5, n_tokens, 10)
    # zero-initialised conv paths: at init both are exactly their linear paths
    torch.testing.assert_close(tokens.flatten(1), enc.linear(beats.flatten(1)))
    z = tokens.flatten(1)
    assert dec(z).shape == (5, 3, beat_len)
    torch.testing.assert_close(dec(z), dec.linear(z).view(5, 3, beat_len))
    # the linear paths can represent principal components: W^T W projection is reproduced exactly
    basis = torch.linalg.qr(torch.randn(3 * beat_len, n_tokens * 10))[0]  # orthonormal columns
    with torch.no_grad():
        enc.linear.weight.copy_(basis.T)
        enc.linear.bias.zero_()
        dec.linear.weight.copy_(basis)
        dec.linear.bias.zero_()
    in_span = (basis @ torch.randn(n_tokens * 10, 5)).T.reshape(5, 3, beat_len)
    torch.testing.assert_close(dec(enc(in_span).flatten(1)), in_span, atol=1e-5, rtol=1e-5)


def test_encoder_beats_are_independent_of_each_other():
    enc = BeatEncoder([8, 16], 1, 8, 64).eval()
    torch.nn.init.normal_(enc.head[-1].weight)  # exercise the conv path too
    x = torch.randn(4, 3, 64)
    y = x.clone()
    y[1:] = torch.randn(3, 3, 64)
    torch.testing.assert_close(enc(x)[0], enc(y)[0])  # GroupNorm, not BatchNorm


def test_dynamics_is_causal_and_reports_last_valid_state():
    torch.manual_seed(0)
    dyn = BeatDynamics(6, 16, layers=2)
    tokens, rr = torch.randn(2, 7, 6), torch.rand(2, 7) + 0.5
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    states, pred, final = dyn(tokens, rr, mask)
    assert states.shape == (2, 7, 16) and pred.shape == (2, 7, 6) and final.shape == (2, 16)
    torch.testing.assert_close(final[0], states[0, 6])
    torch.testing.assert_close(final[1], states[1, 3])
    assert states[1, 4:].abs().max() == 0
    for k in range(6):  # changing beat k+1 (token or RR) never changes states up to k
        t2, r2 = tokens.clone(), rr.clone()
        t2[:, k + 1 :] += 5.0
        r2[:, k + 1 :] *= 2.0
        s2, _, _ = dyn(t2, r2, mask)
        torch.testing.assert_close(s2[:, : k + 1], states[:, : k + 1])
        assert not torch.allclose(s2[0, k + 1], states[0, k + 1])


def test_dynamics_padding_and_empty_records():
    dyn = BeatDynamics(4, 8)
    tokens, rr = torch.randn(2, 5, 4), torch.rand(2, 5)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    s, p, f = dyn(tokens, rr, mask)
    t2, r2 = tokens.clone(), rr.clone()
    t2[:, 2:] = 1e6
    r2[:, 2:] = -3.0
    s2, p2, f2 = dyn(t2, r2, mask)
    torch.testing.assert_close(s[0, :2], s2[0, :2])
    torch.testing.assert_close(f, f2)
    assert torch.all(f[1] == 0) and torch.isfinite(s).all()


def test_residual_refine_identity_at_init_and_reads_only_the_projection():
    ref = ResidualRefine(8)
    proj = torch.randn(2, 12, 30)
    out = ref(proj, _visible(2, 3))
    torch.testing.assert_close(out, proj)
    assert ref.net[0].in_channels == 24  # 12 projected leads + 12 flags: no raw lead can bypass the tokens


def test_registry_builds_both_presets_and_rejects_unknown_names():
    assert {"lvcg-tiny", "lvcg-base"} <= set(list_models())
    base = model_settings("lvcg-base")
    assert base.encoder_channels == [96, 192, 256, 256] and base.state_dim == 256 and base.gru_layers == 2
    assert base.beat_len == 128 and base.max_beats == 20
    tiny = build_model(model_settings("lvcg-tiny", d_token=16, state_dim=8), DataSettings())
    assert tiny.config["model"]["name"] == "lvcg-tiny" and tiny.config["model"]["d_token"] == 16
    assert tiny.config["data"]["fs"] == 100.0
    with pytest.raises(LvcgError, match="lvcg-tiny"):
        build_model(model_settings("lvcg-tiny").model_copy(update={"name": "lvcg-tinny"}))
    with pytest.raises(LvcgError, match="lvcg-base"):
        model_settings("lvcg-bsae")
    with pytest.raises(ValueError, match="already registered"):
        register_model("lvcg-tiny")(lambda m, d: None)
