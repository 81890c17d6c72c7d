"""Run folders: unique per run even within one second, never overwritten, never left empty by a failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_embed import invoke
from test_pretrain import SMALL, SMALL_MODEL, one_line_error
from test_pretrain import invoke as pretrain
from test_probe import write_toy_cache

from lvcg_cli import runs
from lvcg_cli.errors import LvcgError


def test_runs_started_in_the_same_second_get_their_own_folders(monkeypatch, tmp_path):
    frozen = time.time()
    monkeypatch.setattr(runs.time, "time", lambda: frozen)
    folders = [runs.claim_new(tmp_path, "probe-") for _ in range(50)]
    assert len({f.name for f in folders}) == 50 and all(f.is_dir() for f in folders)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(frozen))
    assert all(re.fullmatch(rf"probe-{stamp}-[0-9a-f]{{4}}", f.name) for f in folders)


def test_a_name_already_taken_is_drawn_again(monkeypatch, tmp_path):
    monkeypatch.setattr(runs.time, "time", lambda: 1_700_000_000.0)
    draws = iter(["abcd", "abcd", "ef01"])
    monkeypatch.setattr(runs.secrets, "token_hex", lambda n: next(draws))
    first, second = runs.claim_new(tmp_path), runs.claim_new(tmp_path)
    assert first.name.endswith("-abcd") and second.name.endswith("-ef01")


def test_a_named_folder_must_be_new_or_empty(tmp_path):
    path, created = runs.claim_named(tmp_path / "a" / "b", "choose another --out")
    assert created and path.is_dir()
    same, created = runs.claim_named(path, "choose another --out")  # empty: accepted, not ours
    assert same == path and not created
    (path / "config.yaml").write_text("x")
    with pytest.raises(LvcgError, match="run folder already exists; choose another --out"):
        runs.claim_named(path, "choose another --out")


def test_a_failed_run_that_did_nothing_is_removed_one_that_did_is_marked(tmp_path):
    idle = runs.claim_new(tmp_path)
    (idle / "config.yaml").write_text("run: {}\n")
    (idle / "metrics.jsonl").write_text("")
    assert runs.abandon(idle, "boom") is None and not idle.exists()

    mine = tmp_path / "mine"  # an empty --out the user made: emptied again, not removed
    mine.mkdir()
    (mine / "config.yaml").write_text("run: {}\n")
    assert runs.abandon(mine, "boom", created=False) is None
    assert mine.is_dir() and not any(mine.iterdir())

    worked = runs.claim_new(tmp_path)
    (worked / "config.yaml").write_text("run: {}\n")
    (worked / "ckpt-100.pt").write_bytes(b"weights")
    marker = runs.abandon(worked, "ValueError: loss became nan")
    assert marker == worked / runs.FAILED_FILE
    assert marker.read_text().strip().endswith("ValueError: loss became nan")
    assert (worked / "ckpt-100.pt").read_bytes() == b"weights"


@pytest.mark.slow
def test_two_probes_started_together_get_two_folders(tmp_path):
    toy = write_toy_cache(tmp_path / "toy", n=60)
    base = [sys.executable, "-m", "lvcg_cli", "probe", "--dataset", str(toy), "--model", "features", "-q"]
    procs = [
        subprocess.Popen([*base, "--seed", str(seed)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(re.fullmatch(r"probe-\d{8}-\d{6}-[0-9a-f]{4}", f.name) for f in folders)
    seeds = sorted(pd.read_csv(f / "probing_results.csv")["seed"].tolist()[0] for f in folders)
    assert seeds == [1, 2]  # each run wrote its own rows ...
    configs = [yaml.safe_load((f / "config.yaml").read_text()) for f in folders]
    assert sorted(c["probe"]["seeds"][0] for c in configs) == [1, 2]  # ... and its own config


def test_run_id_and_out_together_are_an_error_not_one_ignored(tmp_path):
    result = pretrain("--run-id", "a", "--out", str(tmp_path / "b"), *SMALL)
    message = one_line_error(result)
    assert "--run-id a and --out" in message and "give one of them" in message
    code, _, message = invoke(["probe", "--run.run_id", "a", "--out", tmp_path / "b", "--model", "features"])
    assert code == 2 and "give one of them" in message
    assert not (tmp_path / "b").exists()


def test_run_id_is_honoured_under_runs(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)
    result = pretrain("--run-id", "mine", "--max-steps", "1", "--json", *SMALL, *SMALL_MODEL)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["checkpoint"] == str(Path("runs") / "mine" / "final.pt") and payload["step"] == 1
    assert payload["run_dir"] == str(Path("runs") / "mine") and payload["interrupted"] is False
    result = pretrain("--run-id", "mine", "--max-steps", "1", *SMALL, *SMALL_MODEL)
    assert "runs/mine: run folder already exists; add --resume" in one_line_error(result)
    result = pretrain("--run-id", "mine2", "--max-steps", "1", *SMALL, *SMALL_MODEL)
    assert result.stdout.strip() == str(Path("runs") / "mine2" / "final.pt")
    assert (
        yaml.safe_load((tmp_path / "runs" / "mine2" / "config.yaml").read_text())["run"]["run_id"] == "mine2"
    )


def test_a_run_that_fails_at_the_start_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = pretrain("--data", "/nonexistent", *SMALL)
    assert "/nonexistent" in one_line_error(result)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    result = pretrain("--data", "/nonexistent", "--out", str(tmp_path / "named"), *SMALL)
    assert "/nonexistent" in one_line_error(result) and not (tmp_path / "named").exists()
    code, _, _ = invoke(["probe", "--dataset", "ptbxl", "--model", "features"])
    assert code == 2 and not any((tmp_path / "runs").glob("probe-*"))
