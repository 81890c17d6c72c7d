"""The executable: help texts, version, one-line errors with exit code 2, config command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from lvcg_cli import __version__
from lvcg_cli.main import app

SUBCOMMANDS = ["prepare-data", "pretrain", "probe", "reconstruct", "embed", "config"]
runner = CliRunner()


def _lvcg(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (true stdout/stderr and exit code)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"lvcg {__version__}"


def test_help_lists_every_subcommand():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


HELP_MUST_SHOW = {
    "prepare-data": ["Examples", "lvcg prepare-data ptbxl", "--root", "--workers", "--shard", "--force"],
    "pretrain": ["Examples", "lvcg pretrain", "--gpus", "--preset", "--resume", "--max-steps"],
    "probe": ["Examples", "lvcg probe", "--dataset", "--ratio", "--seed", "--checkpoint"],
    "reconstruct": ["Examples", "lvcg reconstruct", "--visible", "--method", "--plot"],
    "embed": ["Examples", "lvcg embed", "--visible", "--batch-size", "--device"],
    "config": ["show", "write", "presets"],
}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help_with_examples_and_its_options(name):
    result = runner.invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Usage" in text
    for needle in HELP_MUST_SHOW[name]:
        assert needle in text, f"`lvcg {name} --help` does not mention {needle}"


@pytest.mark.slow
def test_unknown_setting_is_one_line_exit_2_without_traceback():
    proc = _lvcg("config", "show", "--train.lrr", "1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["lvcg: error: --train.lrr: unknown setting (did you mean '--train.lr'?)"]
    assert proc.stdout == ""


@pytest.mark.slow
def test_bad_value_is_one_line_exit_2():
    proc = _lvcg("config", "show", "--data.fs", "-5")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["lvcg: error: --data.fs: must be > 0 (got -5)"]


@pytest.mark.slow
def test_debug_shows_the_traceback():
    proc = _lvcg("config", "show", "--data.fs", "-5", env={"LVCG_DEBUG": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "SettingsError" in proc.stderr


def test_config_show_applies_every_source(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lr: 0.01\n  batch_size: 5\n")
    monkeypatch.setenv("LVCG_TRAIN__BATCH_SIZE", "6")
    result = runner.invoke(
        app, ["config", "show", "--preset", "lvcg-base", "--config", str(cfg), "--train.max_steps", "9"]
    )
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["model"]["name"] == "lvcg-base"
    assert shown["train"]["lr"] == 0.01
    assert shown["train"]["batch_size"] == 6
    assert shown["train"]["max_steps"] == 9


def test_config_write_round_trips(tmp_path):
    out = tmp_path / "my.yaml"
    result = runner.invoke(app, ["config", "write", str(out), "--preset", "lvcg-tiny", "--train.lr", "0.005"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["config", "show", "--config", str(out), "--json"])
    assert again.exit_code == 0
    import json

    assert json.loads(again.stdout)["train"]["lr"] == 0.005


def test_config_presets_lists_bundled_presets():
    result = runner.invoke(app, ["config", "presets"])
    assert result.exit_code == 0
    assert {"lvcg-tiny", "lvcg-base"} <= set(result.stdout.split())
