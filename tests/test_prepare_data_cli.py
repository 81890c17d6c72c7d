"""``lvcg prepare-data`` on the command line: roots, one-line errors, reuse, shards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from lvcg_cli.datasets.cache import PackedCache
from lvcg_cli.errors import LvcgError
from lvcg_cli.main import app

RELEASES = FIXTURES / "releases"
runner = CliRunner()


def test_help_explains_every_option_with_examples():
    result = runner.invoke(app, ["prepare-data", "--help"])
    assert result.exit_code == 0
    for option in (
        "--root",
        "--out",
        "--workers",
        "--shard",
        "--force",
        "LVCG_PREPARE__",
        "lvcg prepare-data ptbxl",
    ):
        assert option in result.stdout


def test_mimic_without_a_root_says_how_to_set_it():
    result = runner.invoke(app, ["prepare-data", "mimic"])
    assert isinstance(result.exception, LvcgError)
    message = str(result.exception)
    for hint in ("--root PATH", "--prepare.mimic_root", "LVCG_PREPARE__MIMIC_ROOT"):
        assert hint in message


@pytest.mark.slow
def test_mimic_without_a_root_is_one_line_exit_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVCG_PREPARE")}
    proc = subprocess.run(
        [sys.executable, "-m", "lvcg_cli", "prepare-data", "mimic"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lvcg: error: mimic: no data root given")
    assert proc.stdout == ""


def test_wrong_root_fails_fast_saying_what_was_expected(tmp_path):
    result = runner.invoke(app, ["prepare-data", "ptbxl", "--root", str(tmp_path)])
    assert isinstance(result.exception, LvcgError)
    assert str(result.exception) == (
        f"ptbxl: {tmp_path} has no ptbxl_database.csv (expected the PTB-XL 1.0.3 release root with "
        "records100/, records500/, ptbxl_database.csv, scp_statements.csv)"
    )


def test_root_from_environment_then_reuse_then_force(tmp_path, monkeypatch):
    monkeypatch.setenv("LVCG_PREPARE__LUDB_ROOT", str(RELEASES / "ludb"))
    out = tmp_path / "ludb_cache"
    args = ["prepare-data", "ludb", "--out", str(out), "--workers", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().splitlines()[-1] == str(out)
    # off a terminal, progress is a plain timestamped line (here the finished task's)
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d preparing ludb: 4/4 records \(100%\), ", first.stderr, re.M
    )
    assert len(PackedCache.open(out)) == 4
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "reusing it (add --force" in again.stderr
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["path"] == str(out) and payload["reused"] is True
    assert payload["n_written"] == 4 and payload["dataset"] == "ludb"
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0 and "reusing" not in forced.stderr and "written" in forced.stderr


def test_shard_and_dotted_overrides(tmp_path):
    out = tmp_path / "p"
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "ptbxl",
            "--root",
            str(RELEASES / "ptbxl"),
            "--out",
            str(out),
            "--shard",
            "1/2",
            "--workers",
            "1",
            "--prepare.ptbxl_rate",
            "100",
            "--prepare.split",
            "strat_fold",
        ],
    )
    assert result.exit_code == 0, result.output
    cache = PackedCache.open(out / "shard-1-of-2")
    assert cache.manifest["id"].tolist() == ["263", "336", "412"]
    assert cache.manifest["split"].tolist() == ["train", "test", "train"]
    bad = runner.invoke(app, ["prepare-data", "ptbxl", "--root", str(RELEASES / "ptbxl"), "--shard", "2/2"])
    assert isinstance(bad.exception, LvcgError) and "0 <= i < n" in str(bad.exception)


def test_unknown_name_suggests_the_closest():
    result = runner.invoke(app, ["prepare-data", "ptb-xl"])
    assert isinstance(result.exception, LvcgError) and "did you mean 'ptbxl'" in str(result.exception)


def _two_folders(tmp_path):
    """Two folders of different LUDB records (two records each)."""
    import shutil

    source = RELEASES / "ludb" / "data"
    folders = {}
    for name, ids in (("A", ("1", "2")), ("B", ("34", "8"))):
        folder = tmp_path / name
        folder.mkdir()
        for ident in ids:
            for suffix in (".hea", ".dat"):
                shutil.copy(source / f"{ident}{suffix}", folder / f"{ident}{suffix}")
        folders[name] = folder
    return folders


def test_a_second_folder_never_gets_the_first_folders_cache(tmp_path, monkeypatch):
    folders = _two_folders(tmp_path)
    base = ["prepare-data", "folder", "--workers", "1"]
    first = runner.invoke(app, [*base, "--root", str(folders["A"])])
    assert first.exit_code == 0, first.output
    cache = first.stdout.strip()
    assert sorted(PackedCache.open(cache).manifest["id"]) == ["1", "2"]

    second = runner.invoke(app, [*base, "--root", str(folders["B"])])
    assert isinstance(second.exception, LvcgError)
    message = str(second.exception)
    assert "\n" not in message and f"from {folders['A']} (now {folders['B']})" in message
    assert "--out DIR" in message and "--force" in message
    assert sorted(PackedCache.open(cache).manifest["id"]) == ["1", "2"]  # untouched

    own = runner.invoke(app, [*base, "--root", str(folders["B"]), "--out", str(tmp_path / "b_cache")])
    assert own.exit_code == 0, own.output
    assert sorted(PackedCache.open(tmp_path / "b_cache").manifest["id"]) == ["34", "8"]

    monkeypatch.chdir(tmp_path)  # the same folder by a relative path is the same source: reused
    again = runner.invoke(app, [*base, "--root", "A"])
    assert again.exit_code == 0 and "reusing it" in again.stderr

    replaced = runner.invoke(app, [*base, "--root", str(folders["B"]), "--force"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(PackedCache.open(cache).manifest["id"]) == ["34", "8"]
    assert json.loads((Path(cache) / "meta.json").read_text())["root"] == str(folders["B"].resolve())


def test_other_preparation_settings_are_not_reused(tmp_path):
    out = tmp_path / "p"
    base = ["prepare-data", "ptbxl", "--root", str(RELEASES / "ptbxl"), "--out", str(out), "--workers", "1"]
    base += ["--prepare.ptbxl_rate", "100"]
    assert runner.invoke(app, [*base, "--prepare.split", "strat_fold"]).exit_code == 0
    other = runner.invoke(app, [*base, "--prepare.split", "melp"])
    assert isinstance(other.exception, LvcgError)
    assert "with --prepare.split strat_fold (now melp)" in str(other.exception)
    resampled = runner.invoke(app, [*base, "--prepare.split", "strat_fold", "--data.fs", "250"])
    assert "with --data.fs 100 (now 250)" in str(resampled.exception)


def test_shards_of_one_cache_come_from_one_folder(tmp_path):
    folders = _two_folders(tmp_path)
    base = ["prepare-data", "folder", "--workers", "1", "--out", str(tmp_path / "c")]
    assert runner.invoke(app, [*base, "--root", str(folders["A"]), "--shard", "0/2"]).exit_code == 0
    mixed = runner.invoke(app, [*base, "--root", str(folders["B"]), "--shard", "1/2"])
    assert isinstance(mixed.exception, LvcgError) and "shard-0-of-2" in str(mixed.exception)
    assert not (tmp_path / "c" / "shard-1-of-2").exists()
