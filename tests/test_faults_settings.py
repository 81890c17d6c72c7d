"""Hostile settings and checkpoints: non-finite and duplicate values, unreadable YAML, absurd sizes."""

from __future__ import annotations

import tracemalloc

import pytest
import torch
from cli_in_process import run_cli

from lvcg_cli.engine.checkpoint import bundled_weights_path, load_checkpoint, load_model
from lvcg_cli.errors import LvcgError, SettingsError
from lvcg_cli.model.registry import MAX_PARAMETERS, build_model, count_parameters
from lvcg_cli.settings import (
    MAX_WINDOW_SAMPLES,
    ModelSettings,
    load_yaml_file,
    resolve_settings,
    unknown_env,
)


def _one_line(info: pytest.ExceptionInfo) -> str:
    text = str(info.value)
    assert "\n" not in text and len(text) < 300, text
    return text


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_yaml_values_are_refused(tmp_path, value):
    path = tmp_path / "bad.yaml"
    path.write_text(f"train:\n  lr: {value}\n")
    with pytest.raises(SettingsError) as info:
        resolve_settings(config_files=[path], environ={})
    assert _one_line(info).startswith("--train.lr: must be a finite number") and str(path) in str(info.value)


@pytest.mark.parametrize("key", ["--data.fs", "--train.loss.hidden", "--model.lift_eps"])
def test_non_finite_command_line_and_environment_values_are_refused(key):
    with pytest.raises(SettingsError, match=rf"^{key}: must be a finite number"):
        resolve_settings(overrides=[key, "nan"], environ={})
    env_key = "LVCG_" + key[2:].upper().replace(".", "__")
    with pytest.raises(SettingsError, match=rf"^{key}: must be a finite number .*\(from env\)"):
        resolve_settings(environ={env_key: "inf"})


def test_duplicate_yaml_keys_are_refused_with_their_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  lr: 0.1\n  batch_size: 4\n  lr: 0.2\n")
    with pytest.raises(SettingsError) as info:
        load_yaml_file(path)
    assert _one_line(info) == f"{path}: duplicate key 'lr' (line 4); give each setting once"
    path.write_text("train:\n  lr: 0.1\nmodel: {}\ntrain:\n  batch_size: 2\n")
    with pytest.raises(SettingsError, match=r"duplicate key 'train' \(line 4\)"):
        load_yaml_file(path)
    path.write_text("train:\n  lr: 0.1\nmodel:\n  lr_eps: 1\n")  # same key in two sections is fine
    assert load_yaml_file(path) == {"train": {"lr": 0.1}, "model": {"lr_eps": 1}}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01binary", "not a text (UTF-8) settings file"),
        (b"train:\n  lr: 0.1 \xe9\n", "not a text (UTF-8) settings file"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply to be a settings file"),
        (b"a: " + b"{b: " * 5000 + b"1" + b"}" * 5000, "nested too deeply to be a settings file"),
        (b"train: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
        (b"- just\n- a list\n", "expected a mapping of sections"),
    ],
    ids=["binary", "latin-1", "deep-list", "deep-map", "python-tag", "list"],
)
def test_unreadable_yaml_is_one_line(tmp_path, content, problem):
    path = tmp_path / "settings.yaml"
    path.write_bytes(content)
    with pytest.raises(SettingsError) as info:
        load_yaml_file(path)
    assert _one_line(info).startswith(f"{path}: ") and problem in str(info.value)


def test_a_folder_given_as_settings_file(tmp_path):
    with pytest.raises(SettingsError, match="is a folder, not a settings file"):
        load_yaml_file(tmp_path)


def test_unreadable_yaml_through_the_cli_is_exit_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "deep.yaml"
    path.write_bytes(b"[" * 5000 + b"]" * 5000)
    code, out, err = run_cli(monkeypatch, capsys, "config", "show", "-c", str(path))
    assert code == 2 and out == ""
    assert err == f"lvcg: error: {path}: nested too deeply to be a settings file\n"


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------
def test_unknown_lvcg_variables_are_found_and_known_ones_are_not():
    env = {
        "LVCG_TRAIN": "1",
        "LVCG_TRAIN_LR": "1",
        "LVCG_TRAIN__LR": "0.1",
        "LVCG_HOME": "/x",
        "LVCG_CACHE_DIR": "/y",
        "LVCG_DEBUG": "1",
        "LVCG_NO_PROGRESS": "1",
        "LVCG_SHARED_DATA": "/z",
        "LVCG_MAX_RECORD_MB": "10",
        "PATH": "/bin",
    }
    assert unknown_env(env) == ["LVCG_TRAIN", "LVCG_TRAIN_LR"]


def test_unknown_lvcg_variable_is_warned_once_and_the_command_still_runs(monkeypatch, capsys):
    monkeypatch.setattr("lvcg_cli.settings._warned_env", set())
    monkeypatch.setenv("LVCG_TRAIN", "1")
    code, out, err = run_cli(monkeypatch, capsys, "config", "show")
    assert code == 0 and "lr:" in out
    lines = [line for line in err.splitlines() if "LVCG_TRAIN" in line]
    assert len(lines) == 1
    assert lines[0].startswith(
        "warning: environment variable LVCG_TRAIN is not an lvcg setting and is ignored"
    )
    assert "LVCG_TRAIN__<KEY>" in lines[0]


# ---------------------------------------------------------------------------------------------
# sizes: bounded before anything is allocated
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.d_token", 10**9),
        ("model.state_dim", 10**7),
        ("model.gru_layers", 10**6),
        ("model.max_beats", 10**9),
        ("model.encoder_channels", [10**6, 10**6]),
        ("model.encoder_channels", [32] * 100),
        ("data.fs", 10**9),
    ],
)
def test_absurd_architecture_sizes_are_refused_by_the_settings(key, value):
    with pytest.raises(SettingsError) as info:
        resolve_settings(overrides={key: value}, environ={})
    assert _one_line(info).startswith(f"--{key}: must be")


def test_window_is_bounded():
    with pytest.raises(SettingsError, match=rf"at most {MAX_WINDOW_SAMPLES}"):
        resolve_settings(overrides={"data.fs": 20000, "data.window_s": 1000}, environ={})


def test_a_model_over_the_parameter_bound_is_counted_not_built():
    big = ModelSettings(encoder_channels=[4096] * 12, d_token=4096, state_dim=8192, gru_layers=16)
    tracemalloc.start()
    try:
        n = count_parameters(big)
        with pytest.raises(LvcgError) as info:
            build_model(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n > MAX_PARAMETERS
    assert _one_line(info).startswith(f"--model: these settings describe a model of {n:,} parameters")
    assert peak < 64 << 20  # counted on the meta device: nothing of the 40+ GiB was allocated
    tiny = resolve_settings(preset="lvcg-tiny", environ={})
    built = build_model(tiny.model, tiny.data)
    assert count_parameters(tiny.model, tiny.data) == sum(p.numel() for p in built.parameters())


def test_checkpoint_asking_for_a_1_tb_model_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    ckpt = torch.load(bundled_weights_path(), weights_only=True)
    ckpt["settings"]["model"]["encoder_channels"] = [4096] * 12
    ckpt["settings"]["model"]["d_token"] = 4096
    ckpt["settings"]["model"]["state_dim"] = 8192
    big = tmp_path / "big.pt"
    torch.save(ckpt, big)
    with pytest.raises(LvcgError) as info:
        load_model(big)
    assert "parameters" in _one_line(info)
    ckpt["settings"]["model"]["d_token"] = 2**38  # 1 TB in one field
    torch.save(ckpt, big)
    record = "lvcg_cli/assets/records/ptbxl/00001_hr.hea"
    code, out, err = run_cli(
        monkeypatch, capsys, "embed", record, "--checkpoint", str(big), "-o", str(tmp_path / "e.npy")
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"lvcg: error: {big}: checkpoint settings are invalid (model.d_token")
    assert not (tmp_path / "e.npy").exists()


def test_checkpoint_with_non_finite_settings_is_refused(tmp_path):
    ckpt = torch.load(bundled_weights_path(), weights_only=True)
    ckpt["settings"]["train"]["lr"] = float("inf")
    path = tmp_path / "inf.pt"
    torch.save(ckpt, path)
    with pytest.raises(LvcgError, match=r"checkpoint settings are invalid \(train.lr"):
        load_model(path)
    assert load_checkpoint(bundled_weights_path())["format"]  # the bundled one is fine
