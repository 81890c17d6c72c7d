"""The model package owns its configuration: a registered name is an architecture, and the model
imports neither the command line's settings nor the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from lvcg_cli.errors import LvcgError
from lvcg_cli.model.config import LossWeights, ModelSettings
from lvcg_cli.model.registry import architecture, build_model, model_settings
from lvcg_cli.settings import Settings, load_preset, resolve_settings

MODEL_DIR = Path(__file__).resolve().parents[1] / "lvcg_cli" / "model"


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top level, functions and TYPE_CHECKING blocks alike)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_model_package_imports_no_cli_settings_and_dynamics_no_engine():
    for path in sorted(MODEL_DIR.glob("*.py")):
        assert not any(m == "lvcg_cli.settings" for m in _imports(path)), path.name
    assert not any(m.startswith("lvcg_cli.engine") for m in _imports(MODEL_DIR / "dynamics.py"))


def test_settings_use_the_model_packages_own_config():
    assert Settings.model_fields["model"].annotation is ModelSettings
    assert Settings().train.loss == LossWeights()


def test_a_registered_name_alone_gives_its_architecture():
    base = resolve_settings(overrides=["--model.name", "lvcg-base"], environ={}).model
    assert base == ModelSettings(name="lvcg-base") == model_settings("lvcg-base")
    assert base.encoder_channels == [96, 192, 256, 256] and base.d_token == 256
    assert base.state_dim == 256 and base.gru_layers == 2 and base.lifter_channels == 64
    # explicit values still apply on top of the name, whichever source gives them
    wider = resolve_settings(overrides={"model.name": "lvcg-base", "model.d_token": "128"}, environ={}).model
    assert wider.d_token == 128 and wider.encoder_channels == [96, 192, 256, 256]
    # the default name is the bundled architecture, with its sizes
    assert Settings().model == ModelSettings(name="lvcg-tiny")
    assert Settings().model.lifter_channels == architecture("lvcg-tiny")["lifter_channels"] == 48


def test_presets_keep_the_train_settings_and_the_name():
    preset = load_preset("lvcg-base")
    assert preset["model"] == {"name": "lvcg-base"} and preset["train"]["batch_size"] == 64
    resolved = resolve_settings(preset="lvcg-base", environ={})
    assert resolved.model == ModelSettings(name="lvcg-base") and resolved.train.batch_size == 64


def test_an_unknown_name_is_one_line_with_the_closest():
    with pytest.raises(
        LvcgError, match=r"--model.name: unknown model 'lvcg-bsae' \(did you mean 'lvcg-base'\?\)"
    ):
        resolve_settings(overrides=["--model.name", "lvcg-bsae"], environ={})


def test_the_gru_device_is_injected_and_does_not_change_the_output():
    config = ModelSettings(
        encoder_channels=[8, 16], d_token=8, state_dim=8, lifter_channels=8, lifter_layers=1
    )
    torch.manual_seed(0)
    plain = build_model(config).eval()
    asked: list[torch.device] = []

    def choose(device: torch.device) -> torch.device:
        asked.append(device)
        return torch.device("cpu")

    torch.manual_seed(0)
    injected = build_model(config, gru_device=choose).eval()
    assert plain.state_dict().keys() == injected.state_dict().keys()
    tokens, rr, mask = torch.randn(2, 5, 8), torch.rand(2, 5), torch.ones(2, 5, dtype=torch.bool)
    for a, b in zip(plain.dynamics(tokens, rr, mask), injected.dynamics(tokens, rr, mask), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert asked == [torch.device("cpu")]


def test_a_registered_architecture_carries_its_sizes():
    from lvcg_cli.model.lvcg import LVCG
    from lvcg_cli.model.registry import list_models, register_model

    @register_model(
        "test-narrow", d_token=8, state_dim=8, encoder_channels=[8], lifter_channels=8, lifter_layers=1
    )
    def narrow(config, data, gru_device=None):
        return LVCG(config, data, gru_device=gru_device)

    assert "test-narrow" in list_models()
    config = ModelSettings(name="test-narrow", state_dim=16)
    assert (config.d_token, config.state_dim, config.encoder_channels) == (8, 16, [8])
    assert build_model(config).embedding_dim == 8 + 16 + 8 + 20
    with pytest.raises(ValueError, match="unknown architecture fields d_tokens"):
        register_model("test-typo", d_tokens=8)
