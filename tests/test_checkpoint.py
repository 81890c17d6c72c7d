"""Checkpoints: weights_only loading, exact round trips, and one-line refusals of wrong files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lvcg_cli.engine.checkpoint import (
    CHECKPOINT_FORMAT,
    bundled_weights_path,
    capture_rng,
    check_compatible,
    load_checkpoint,
    load_model,
    restore_rng,
    save_checkpoint,
)
from lvcg_cli.engine.schedule import build_scheduler
from lvcg_cli.engine.trainer import build_optimizer
from lvcg_cli.errors import LvcgError
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import resolve_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    settings = resolve_settings(preset="lvcg-tiny")
    torch.manual_seed(0)
    return settings, build_model(settings.model, settings.data)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text.strip()
    return text


def test_round_trip_is_exact_and_loads_with_weights_only(tiny, tmp_path):
    settings, model = tiny
    optimizer = build_optimizer(model, settings.train)
    scheduler = build_scheduler(optimizer, 5, 50, 0.1)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        path,
        model=model,
        settings=settings,
        step=7,
        optimizer=optimizer,
        scheduler=scheduler,
        rng=[capture_rng()],
    )
    raw = torch.load(path, weights_only=True)  # no arbitrary pickle needed
    assert raw["format"] == CHECKPOINT_FORMAT and raw["step"] == 7
    assert raw["arch"] == {
        "name": "lvcg-tiny",
        "n_params": sum(p.numel() for p in model.parameters()),
        "embedding_dim": model.embedding_dim,
    }
    assert raw["settings"]["model"] == settings.model.model_dump(mode="json")
    loaded, loaded_settings = load_model(path)
    assert loaded_settings == settings and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert not any(p.name.startswith(".ckpt") for p in tmp_path.iterdir())  # no temporary left behind


def test_rng_states_round_trip_through_a_checkpoint(tiny, tmp_path):
    settings, model = tiny
    random.seed(1), np.random.seed(2), torch.manual_seed(3)  # noqa: NPY002 - the legacy global state is what is saved
    random.random(), np.random.normal(), torch.randn(2)  # states mid-stream, numpy gauss cached  # noqa: NPY002 - the legacy global state is what is saved
    save_checkpoint(tmp_path / "r.pt", model=model, settings=settings, step=0, rng=capture_rng())
    expected = (random.random(), np.random.normal(), torch.randn(3))  # noqa: NPY002 - the legacy global state is what is saved
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # noqa: NPY002 - the legacy global state is what is saved
    restore_rng(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (random.random(), np.random.normal(), torch.randn(3))  # noqa: NPY002 - the legacy global state is what is saved
    assert expected[0] == again[0] and expected[1] == again[1] and torch.equal(expected[2], again[2])


def test_base_checkpoint_is_refused_by_a_tiny_run(tmp_path):
    base = resolve_settings(preset="lvcg-base")
    path = tmp_path / "base.pt"
    save_checkpoint(path, model=build_model(base.model, base.data), settings=base, step=1)
    with pytest.raises(LvcgError) as exc:
        check_compatible(load_checkpoint(path), resolve_settings(preset="lvcg-tiny"), path)
    message = _one_line(exc)
    assert "lvcg-base" in message and "lvcg-tiny" in message and "model.d_token=256 (run: 64)" in message


def test_weights_that_do_not_fit_the_architecture_are_refused(tiny, tmp_path):
    settings, model = tiny
    path = tmp_path / "mislabelled.pt"
    save_checkpoint(path, model=model, settings=settings, step=1)
    ckpt = torch.load(path, weights_only=True)
    ckpt["settings"]["model"]["d_token"] = 32  # claims another width than its weights have
    torch.save(ckpt, path)
    with pytest.raises(LvcgError) as exc:
        load_model(path)
    assert "do not match the architecture" in _one_line(exc) and "shape mismatch" in str(exc.value)
    del ckpt["model_state"][next(iter(ckpt["model_state"]))]
    ckpt["settings"]["model"]["d_token"] = 64
    torch.save(ckpt, path)
    with pytest.raises(LvcgError, match="missing tensor"):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign_pickle", "no_format", "missing"])
def test_corrupt_or_foreign_files_give_one_line_errors(tiny, tmp_path, damage):
    settings, model = tiny
    path = tmp_path / "c.pt"
    save_checkpoint(path, model=model, settings=settings, step=1)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 10)
    elif damage == "foreign_pickle":  # an object weights_only refuses to unpickle
        torch.save({"format": CHECKPOINT_FORMAT, "model_state": {}, "obj": _Foreign()}, path)
    elif damage == "no_format":
        torch.save({"state_dict": {}}, path)
    else:
        path.unlink()
    with pytest.raises(LvcgError) as exc:
        load_model(path)
    message = _one_line(exc)
    assert message.startswith(str(path))
    # The cause is given whole: never cut mid-word, and never torch's advice to load unsafely.
    assert message.endswith(")") or damage in {"no_format", "missing"}
    assert "weights_only` set to `False" not in message and "\x1b" not in message
    expected = {
        "truncate": "(truncated or corrupt: PytorchStreamReader failed reading zip archive: "
        "failed finding central directory)",
        "foreign_pickle": "(a safe weights-only load refuses it: Unsupported global: GLOBAL",
    }.get(damage)
    if expected:
        assert expected in message


class _Foreign:
    pass


def test_load_model_none_gives_the_bundled_tiny_weights():
    if not bundled_weights_path().is_file():
        with pytest.raises(LvcgError, match="no bundled weights"):
            load_model(None)
        return
    model, settings = load_model(None)
    assert settings.model.name == "lvcg-tiny"
    assert (
        sum(p.numel() for p in model.parameters())
        == torch.load(bundled_weights_path(), weights_only=True)["arch"]["n_params"]
    )
    raw = torch.load(bundled_weights_path(), weights_only=True)
    assert "optimizer" not in raw  # shipped weights are stripped
