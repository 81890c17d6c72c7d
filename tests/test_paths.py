"""platformdirs defaults and their overrides."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from lvcg_cli import paths


def test_platformdirs_defaults(monkeypatch):
    monkeypatch.delenv("LVCG_HOME", raising=False)
    monkeypatch.delenv("LVCG_CACHE_DIR", raising=False)
    assert paths.home_dir() == Path(platformdirs.user_data_dir("lvcg"))
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir("lvcg"))


def test_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("LVCG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LVCG_CACHE_DIR", raising=False)
    assert paths.home_dir() == tmp_path / "home"
    assert paths.cache_dir() == tmp_path / "home" / "cache"  # the cache follows LVCG_HOME
    monkeypatch.setenv("LVCG_CACHE_DIR", str(tmp_path / "cache"))
    assert paths.cache_dir() == tmp_path / "cache"
    assert paths.prepared_dir("ptbxl") == tmp_path / "cache" / "prepared" / "ptbxl"
    assert paths.weights_dir() == tmp_path / "home" / "weights"


def test_explicit_options_beat_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LVCG_HOME", str(tmp_path / "env"))
    assert paths.home_dir(tmp_path / "opt") == tmp_path / "opt"
    assert paths.cache_dir(tmp_path / "c") == tmp_path / "c"
