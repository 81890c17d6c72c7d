"""``lvcg pretrain``: it learns, it resumes exactly, it writes what it says, it fails in one line."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lvcg_cli.engine.checkpoint import load_model
from lvcg_cli.engine.schedule import WarmupCosine
from lvcg_cli.engine.trainer import build_optimizer, latest_checkpoint
from lvcg_cli.errors import LvcgError
from lvcg_cli.main import app
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import resolve_settings

runner = CliRunner()
# A few steps on a small simulated set: enough to see learning, small enough for CI.
SMALL = [
    "--data.sim_records", "64",
    "--data.val_fraction", "0.25",
    "--train.batch_size", "8",
    "--train.warmup_steps", "3",
    "--train.lr", "3e-3",
    "--train.log_every", "1",
    "--engine.device", "cpu",
]  # fmt: skip


# A much smaller network for the tests that check mechanics rather than the default model.
SMALL_MODEL = [
    "--model.encoder_channels", "8,16",
    "--model.lifter_channels", "8",
    "--model.lifter_layers", "1",
    "--model.state_dim", "16",
    "--model.d_token", "16",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: str):
    return runner.invoke(app, ["pretrain", *args])


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def one_line_error(result) -> str:
    """What ``lvcg`` would print for the exception CliRunner caught (see main.run)."""
    assert isinstance(result.exception, LvcgError), result.output
    message = str(result.exception)
    assert "\n" not in message.strip()
    return message


# --------------------------------------------------------------------------------------------
def test_lr_schedule_warms_up_then_decays_to_the_floor():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
    values = np.array([schedule(s) for s in range(130)])
    assert values[0] == pytest.approx(1 / 11)  # the first update already moves, gently
    assert np.all(np.diff(values[:11]) > 0)  # linear warm-up...
    assert np.allclose(np.diff(values[:11]), 1 / 11)
    assert values[10] == pytest.approx(1.0)  # ...to the peak
    assert values[60] == pytest.approx(0.1 + 0.9 * 0.5)  # cosine midpoint
    assert np.all(np.diff(values[10:111]) < 0)
    assert values[110] == pytest.approx(0.1) and np.allclose(values[110:], 0.1)


def test_no_weight_decay_on_biases_and_norm_scales():
    settings = resolve_settings(preset="lvcg-tiny")
    model = build_model(settings.model, settings.data)
    decay, no_decay = build_optimizer(model, settings.train).param_groups
    assert decay["weight_decay"] == settings.train.weight_decay and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert any(names[id(p)].endswith("bias") for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


def test_resume_takes_an_optional_path():
    from lvcg_cli.commands._help import fill_optional_values

    options = {"--resume"}
    assert fill_optional_values(["--resume", "runs/x", "--train.lr", "3e-4"], options) == [
        "--resume",
        "runs/x",
        "--train.lr",
        "3e-4",
    ]
    assert fill_optional_values(["--resume", "--run-id", "a"], options) == ["--resume", "", "--run-id", "a"]
    assert fill_optional_values(["--train.compile", "--resume"], options) == [
        "--train.compile",
        "--resume",
        "",
    ]
    assert fill_optional_values(["--resume=runs/x"], options) == ["--resume=runs/x"]


# --------------------------------------------------------------------------------------------
def test_short_default_run_learns_and_writes_config_metrics_and_checkpoint(tmp_path):
    run = tmp_path / "run"
    result = invoke("--max-steps", "10", "--train.val_every", "5", "--out", str(run), *SMALL)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(run / "final.pt")  # the result on stdout
    assert f"--checkpoint {run / 'final.pt'}" in result.output  # next commands to try

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["name"] == "lvcg-tiny" and config["model"]["d_token"] == 64  # default preset
    assert config["train"]["max_steps"] == 10 and config["data"]["sim_records"] == 64
    assert config["run"]["out"] == str(run)

    lines = metrics(run)
    val = [(m["step"], m["val_loss"]) for m in lines if "val_loss" in m]
    assert [s for s, _ in val] == [0, 5, 10]
    assert val[-1][1] < 0.9 * val[0][1]  # held-out simulated records are reconstructed better
    train_lines = [m for m in lines if "loss" in m]
    assert [m["step"] for m in train_lines] == list(range(1, 11))
    for m in train_lines:
        assert {"loss", "loss_hidden", "lr", "samples_per_s", "grad_norm"} <= set(m)
        assert math.isfinite(m["loss"]) and m["samples_per_s"] > 0
    lrs = [m["lr"] for m in train_lines]
    assert lrs[:4] == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)])  # the warm-up is applied
    assert lrs[4] < lrs[3]  # then the cosine decay
    assert lines[-1]["event"] == "final"

    model, settings = load_model(run / "final.pt")
    assert settings.train.max_steps == 10 and torch.load(run / "final.pt", weights_only=True)["step"] == 10
    # best.pt: the step with the lowest validation loss (step 0 is the untrained model, not saved)
    best_step = min(val[1:], key=lambda sv: sv[1])[0]
    assert torch.load(run / "best.pt", weights_only=True)["step"] == best_step

    again = invoke("--max-steps", "10", "--out", str(run), *SMALL)  # no silent overwrite
    assert again.exit_code != 0 and "already exists; add --resume" in one_line_error(again)


def test_resume_continues_the_same_curve(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["--max-steps", "8", "--train.ckpt_every", "4", "--train.val_every", "4", *SMALL, *SMALL_MODEL]
    assert invoke("--out", str(straight), *args).exit_code == 0
    assert sorted(p.name for p in straight.glob("*.pt")) == ["best.pt", "ckpt-4.pt", "final.pt"]
    result = invoke("--resume", str(straight / "ckpt-4.pt"), "--out", str(resumed), *args)
    assert result.exit_code == 0, result.output
    a = torch.load(straight / "final.pt", weights_only=True)
    b = torch.load(resumed / "final.pt", weights_only=True)
    assert b["step"] == 8
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value, rtol=1e-5, atol=1e-6)
    tail_a = [m for m in metrics(straight) if m["step"] > 4 and "loss" in m]
    tail_b = [m for m in metrics(resumed) if "loss" in m]
    assert [m["step"] for m in tail_b] == [5, 6, 7, 8]
    for x, y in zip(tail_a, tail_b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5) and x["lr"] == pytest.approx(y["lr"])

    # --resume --out <run>: the latest checkpoint of that folder; a finished run can be extended.
    assert latest_checkpoint(straight) == straight / "final.pt"
    longer = invoke(
        "--resume", "--out", str(straight), "--max-steps", "9", "-q"
    )  # settings come from the run
    assert longer.exit_code == 0, longer.output
    assert torch.load(straight / "final.pt", weights_only=True)["step"] == 9
    steps = [m["step"] for m in metrics(straight) if "loss" in m]
    assert steps == sorted(set(steps))  # the curve is not logged twice


def test_a_base_checkpoint_cannot_resume_into_a_tiny_run(tmp_path):
    base = resolve_settings(preset="lvcg-base")
    from lvcg_cli.engine.checkpoint import save_checkpoint

    path = tmp_path / "base.pt"
    save_checkpoint(path, model=build_model(base.model, base.data), settings=base, step=3)
    result = invoke("--resume", str(path), "--preset", "lvcg-tiny", "--out", str(tmp_path / "r"), *SMALL)
    message = one_line_error(result)
    assert "checkpoint of lvcg-base does not match this run's lvcg-tiny" in message


def test_original_lvcg_manifest_trains_from_records_on_the_fly(tmp_path):
    records = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records" / "ptbxl"
    lines = [{"id": name, "ecg_path": str(records / name)} for name in ("00001_hr", "00002_hr", "00003_hr")]
    lines.insert(1, {"id": "gone", "ecg_path": str(tmp_path / "missing")})
    manifest = tmp_path / "mimic_manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = tmp_path / "run"
    data = ["--data.meta_root", str(manifest), "--data.val_fraction", "0.3"]
    steps = ["--max-steps", "2", "--train.batch_size", "2", "--train.log_every", "1"]
    # A real process: with data.num_workers auto the records are read in a DataLoader worker, whose
    # warnings go to the process's stderr (CliRunner's in-process capture cannot see a worker's).
    proc = _lvcg("pretrain", *data, *steps, "--out", str(run), *SMALL_MODEL, "--engine.device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "data worker(s) per process" in proc.stderr
    assert f"skipping record {tmp_path / 'missing.hea'}" in proc.stderr  # skipped with a warning
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["meta_root"] == str(manifest)
    assert [m["step"] for m in metrics(run) if "loss" in m] == [1, 2]


# --------------------------------------------------------------------------------------------
def _lvcg(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *args], capture_output=True, text=True, timeout=120, **kw
    )


@pytest.mark.slow
def test_unknown_setting_is_one_line_and_exit_2():
    proc = _lvcg("pretrain", "--train.lrr", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lvcg: error: --train.lrr: unknown setting (did you mean '--train.lr'?)"
    ]


def test_missing_or_corrupt_data_is_one_line(tmp_path):
    result = invoke("--data", "/nonexistent", "--out", str(tmp_path / "a"), *SMALL)
    assert "/nonexistent" in one_line_error(result)

    cache = tmp_path / "cache"  # a prepared data set whose signals file was cut short
    cache.mkdir()
    n, t = 4, 1000
    np.save(cache / "signals.npy", np.zeros((n, 12, t), dtype=np.float16))
    (cache / "manifest.csv").write_text(
        "id,source,split,flags,present\n" + "".join(f"r{i},x,train,,111111111111\n" for i in range(n))
    )
    meta = {
        "format": "lvcg-cache/1",
        "dataset": "x",
        "fs": 100.0,
        "n_samples": t,
        "n": n,
        "tasks": {},
        "complete": True,
    }
    (cache / "meta.json").write_text(json.dumps(meta))
    signals = cache / "signals.npy"
    signals.write_bytes(signals.read_bytes()[:5000])
    result = invoke("--data", str(cache), "--out", str(tmp_path / "b"), *SMALL)
    assert "signals.npy" in one_line_error(result)


def test_more_gpus_than_visible_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = invoke("--gpus", "4", "--out", str(tmp_path / "g"))
    assert one_line_error(result) == (
        "--gpus 4: only 1 CUDA GPU visible on this machine; run with --gpus 1 (or leave out --gpus)"
    )
    assert not (tmp_path / "g").exists()  # nothing was started or written


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "LVCG_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lvcg_cli",
            "pretrain",
            "--max-steps",
            "100000",
            "--out",
            str(run),
            *SMALL,
            *SMALL_MODEL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            path = run / "metrics.jsonl"
            if path.is_file() and any('"loss"' in line for line in path.read_text().splitlines()):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    saved = sorted(run.glob("ckpt-*.pt"))
    assert len(saved) == 1
    step = int(saved[0].stem.split("-")[1])
    assert step >= 1 and torch.load(saved[0], weights_only=True)["step"] == step
    assert f"interrupted at step {step}/100000; checkpoint saved to {saved[0]}" in stderr
    assert "Traceback" not in stderr
