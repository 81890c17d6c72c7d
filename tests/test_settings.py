"""Settings resolution: precedence, unknown keys, bad values, presets, YAML round trip."""

from __future__ import annotations

import pytest
import yaml

from lvcg_cli.errors import SettingsError
from lvcg_cli.settings import (
    Settings,
    env_overrides,
    load_preset,
    parse_dotted_args,
    preset_names,
    resolve_settings,
)


def _yaml(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


def test_defaults_are_valid_and_match_the_model_defaults():
    resolved = resolve_settings(environ={})
    assert resolved == Settings()
    assert resolved.data.n_samples == 1000


def test_precedence_defaults_lt_preset_lt_yaml_lt_env_lt_cli(tmp_path):
    first = _yaml(tmp_path, "a.yaml", {"train": {"lr": 0.1, "batch_size": 7, "max_steps": 11}})
    second = _yaml(tmp_path, "b.yaml", {"train": {"lr": 0.2, "batch_size": 8}})
    env = {"LVCG_TRAIN__LR": "0.3"}

    only_preset = resolve_settings(preset="lvcg-base", environ={})
    assert only_preset.model.name == "lvcg-base"
    assert only_preset.train.batch_size == load_preset("lvcg-base")["train"]["batch_size"]

    yaml_over_preset = resolve_settings(preset="lvcg-base", config_files=[first, second], environ={})
    assert yaml_over_preset.train.lr == 0.2  # later file wins
    assert yaml_over_preset.train.batch_size == 8
    assert yaml_over_preset.train.max_steps == 11  # earlier file still contributes
    assert yaml_over_preset.model.name == "lvcg-base"  # preset kept where YAML is silent

    env_over_yaml = resolve_settings(config_files=[first, second], environ=env)
    assert env_over_yaml.train.lr == 0.3

    cli_over_env = resolve_settings(
        config_files=[first, second], environ=env, overrides=["--train.lr", "0.4"]
    )
    assert cli_over_env.train.lr == 0.4
    assert cli_over_env.train.batch_size == 8


def test_env_variables_map_to_dotted_keys_and_ignore_plain_ones():
    env = {"LVCG_TRAIN__LR": "3e-4", "LVCG_HOME": "/x", "LVCG_DEBUG": "1", "PATH": "/bin"}
    assert env_overrides(env) == {"train.lr": "3e-4"}
    assert resolve_settings(environ=env).train.lr == pytest.approx(3e-4)


def test_nested_env_and_cli_keys():
    resolved = resolve_settings(
        environ={"LVCG_TRAIN__LOSS__HIDDEN": "2.5"}, overrides=["--train.loss.beat=0"]
    )
    assert resolved.train.loss.hidden == 2.5
    assert resolved.train.loss.beat == 0.0


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["--train.lr", "3e-4"], {"train.lr": "3e-4"}),
        (["--train.lr=3e-4"], {"train.lr": "3e-4"}),
        (["--train.compile"], {"train.compile": "true"}),
        (["--train.compile", "--data.fs", "250"], {"train.compile": "true", "data.fs": "250"}),
        (["--data.meta_root", "/m.jsonl"], {"data.meta_root": "/m.jsonl"}),
        (["--data.fs", "-5"], {"data.fs": "-5"}),
    ],
)
def test_parse_dotted_args(tokens, expected):
    assert parse_dotted_args(tokens) == expected


def test_list_fields_accept_comma_strings_and_yaml_lists():
    resolved = resolve_settings(environ={}, overrides=["--model.encoder_channels", "8,16,32"])
    assert resolved.model.encoder_channels == [8, 16, 32]
    resolved = resolve_settings(environ={"LVCG_DATA__BANDPASS": "[0.5, 30]"})
    assert resolved.data.bandpass == (0.5, 30.0)


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(SettingsError) as info:
        resolve_settings(environ={}, overrides=["--train.lrr", "1"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("--train.lrr: unknown setting")
    assert "--train.lr" in message.split("did you mean")[1]


def test_unknown_section_and_yaml_source_are_named(tmp_path):
    with pytest.raises(SettingsError, match=r"unknown setting section 'trian'.*'train'"):
        resolve_settings(environ={}, overrides=["--trian.lr", "1"])
    bad = _yaml(tmp_path, "bad.yaml", {"model": {"d_tokn": 3}})
    with pytest.raises(SettingsError, match=r"--model.d_tokn: unknown setting .*d_token.*bad.yaml"):
        resolve_settings(environ={}, config_files=[bad])


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["--data.fs", "-5"], "--data.fs: must be > 0 (got -5)"),
        (["--train.batch_size", "two"], "--train.batch_size: must be an integer (got two)"),
        (["--engine.precision", "fp8"], "--engine.precision: must be one of"),
        (["--engine.device", "tpu"], "--engine.device: must be auto, cpu, cuda, cuda:N or mps"),
        (["--probe.ratio", "1.5"], "--probe.ratio: must be <= 1 (got 1.5)"),
        (["--data.bandpass", "40,1"], "--data.bandpass: must satisfy 0 <= low < high"),
    ],
)
def test_bad_values_are_said_in_command_line_terms(tokens, message):
    with pytest.raises(SettingsError) as info:
        resolve_settings(environ={}, overrides=tokens)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_bad_env_value_names_the_key():
    with pytest.raises(SettingsError, match=r"--train.lr: must be > 0"):
        resolve_settings(environ={"LVCG_TRAIN__LR": "-1"})


def test_yaml_errors_are_one_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(SettingsError, match=r"broken.yaml: not valid YAML"):
        resolve_settings(environ={}, config_files=[broken])
    with pytest.raises(SettingsError, match="settings file not found"):
        resolve_settings(environ={}, config_files=[tmp_path / "missing.yaml"])
    listy = _yaml(tmp_path, "list.yaml", [1, 2])
    with pytest.raises(SettingsError, match="expected a mapping"):
        resolve_settings(environ={}, config_files=[listy])


def test_presets_are_bundled_and_valid():
    names = preset_names()
    assert {"lvcg-tiny", "lvcg-base"} <= set(names)
    for name in names:
        resolved = resolve_settings(preset=name, environ={})
        assert resolved.model.name == name
    base = resolve_settings(preset="lvcg-base", environ={})
    assert base.model.encoder_channels == [96, 192, 256, 256]
    assert base.model.state_dim == 256 and base.model.gru_layers == 2
    assert base.model.beat_len == 128 and base.model.max_beats == 20
    assert base.data.fs == 100 and base.data.n_samples == 1000
    with pytest.raises(SettingsError, match=r"unknown preset 'lvcg-bse'.*lvcg-base"):
        resolve_settings(preset="lvcg-bse", environ={})


def test_yaml_round_trip_reproduces_the_settings(tmp_path):
    resolved = resolve_settings(preset="lvcg-base", environ={}, overrides=["--train.lr", "7e-4"])
    path = tmp_path / "config.yaml"
    path.write_text(resolved.to_yaml())
    assert resolve_settings(config_files=[path], environ={}) == resolved


def test_visible_range_is_checked():
    with pytest.raises(SettingsError, match="visible_min"):
        resolve_settings(environ={}, overrides=["--train.visible_min", "5", "--train.visible_max", "3"])
