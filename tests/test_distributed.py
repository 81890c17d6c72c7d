"""Distributed pretraining without a GPU: two gloo processes through torch's elastic launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lvcg_cli.engine import distributed
from lvcg_cli.engine.checkpoint import load_model
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import EngineSettings


def _fail_on_rank_one() -> int:
    """A worker whose rank 1 hits a user error while rank 0 waits in a collective."""
    ctx = distributed.init_from_env("cpu")
    if ctx.rank == 1:
        raise LvcgError("data/shard-1: broken on purpose")
    torch.distributed.barrier()
    return ctx.rank


# --------------------------------------------------------------------------------------------
def test_plan_single_launch_and_join():
    assert distributed.plan_launch(EngineSettings(accelerator="cpu"), environ={}).mode == "single"
    plan = distributed.plan_launch(EngineSettings(accelerator="cpu", devices=2), environ={})
    assert (plan.mode, plan.accelerator, plan.nprocs) == ("launch", "cpu", 2)
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}  # started by torchrun: join, never launch
    plan = distributed.plan_launch(EngineSettings(accelerator="cpu", devices=2), environ=env)
    assert (plan.mode, plan.nprocs) == ("join", 8)
    assert distributed.env_job(env) == {"rank": 3, "world_size": 8, "local_rank": 1}


def test_impossible_device_requests_fail_before_anything_starts(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(LvcgError) as exc:
        distributed.plan_launch(EngineSettings(accelerator="cuda", devices=3), environ={})
    assert str(exc.value) == "--gpus 3: only 2 CUDA GPUs visible on this machine; run with --gpus 2"
    plan = distributed.plan_launch(EngineSettings(accelerator="cuda", devices=2), environ={})
    assert (plan.mode, plan.nprocs) == ("launch", 2)  # exactly as many as there are is fine
    with pytest.raises(LvcgError, match="DistributedDataParallel is not supported on Apple GPUs"):
        distributed.plan_launch(EngineSettings(accelerator="mps", devices=2), environ={})


@pytest.mark.parametrize(
    "count,environ,expected",
    [
        (1, {}, "--gpus 4: only 1 CUDA GPU visible on this machine; run with --gpus 1 (or leave out --gpus)"),
        (
            2,
            {"CUDA_VISIBLE_DEVICES": "0,3"},
            "--gpus 4: only 2 CUDA GPUs visible on this machine (CUDA_VISIBLE_DEVICES=0,3); run with --gpus 2",
        ),
    ],
)
def test_too_few_gpus_says_how_many_there_are_and_what_to_run(monkeypatch, count, environ, expected):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    with pytest.raises(LvcgError) as exc:
        distributed.plan_launch(EngineSettings(accelerator="cuda", devices=4), environ=environ)
    assert str(exc.value) == expected


def test_no_gpu_at_all_points_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(LvcgError) as exc:
        distributed.plan_launch(EngineSettings(accelerator="cuda", devices=2), environ={})
    assert str(exc.value) == (
        f"--gpus 2: no CUDA GPU is visible on this machine; this torch ({torch.__version__}) is a CPU-only "
        "build; leave out --gpus to train on the CPU, or run on a machine with GPUs"
    )
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build with the GPUs hidden
    with pytest.raises(LvcgError) as exc:
        distributed.plan_launch(
            EngineSettings(accelerator="cuda", devices=1), environ={"CUDA_VISIBLE_DEVICES": ""}
        )
    assert str(exc.value) == (
        "--gpus 1: no CUDA GPU is visible on this machine (CUDA_VISIBLE_DEVICES=); "
        "leave out --gpus to train on the CPU, or run on a machine with GPUs"
    )


@pytest.mark.slow
def test_too_many_gpus_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    """The real command: exit code 2, one line on stderr, no traceback, nothing written."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "LVCG_NO_PROGRESS": "1"}  # no GPU on any machine
    proc = subprocess.run(
        [sys.executable, "-m", "lvcg_cli", "pretrain", "--gpus", "2", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1
        and "--gpus 2: no CUDA GPU is visible on this machine (CUDA_VISIBLE_DEVICES=)" in lines[0]
    )
    assert "leave out --gpus to train on the CPU" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_failing_rank_is_reported_as_one_line(capfd):
    with pytest.raises(LvcgError) as exc:
        distributed.launch(_fail_on_rank_one, (), nprocs=2)
    assert str(exc.value) == "rank 1 failed: data/shard-1: broken on purpose"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ChildFailedError" not in err


def test_root_cause_prefers_the_real_error_over_ranks_that_lost_their_peer(tmp_path):
    records = [
        {"rank": 0, "time": 1.0, "kind": "bug", "message": "RuntimeError: Connection closed by peer"},
        {"rank": 2, "time": 2.0, "kind": "error", "message": "x.hea: unreadable"},
        {"rank": 1, "time": 0.5, "kind": "interrupted", "message": "interrupted"},
    ]
    for record in records:
        (tmp_path / f"rank-{record['rank']}.json").write_text(json.dumps(record))
    message = distributed._root_cause(str(tmp_path), RuntimeError("launcher"))
    assert message == "rank 2 failed: x.hea: unreadable (2 other rank(s) stopped)"


def test_dataloader_worker_errors_are_unwrapped():
    wrapped = LvcgError(
        "Caught LvcgError in DataLoader worker process 0.\nOriginal Traceback:\n  ...\nlvcg_cli.errors.LvcgError: x.hea: bad"
    )
    assert distributed._original_message(wrapped) == "x.hea: bad"


@pytest.mark.slow
def test_two_cpu_processes_train_in_sync(tmp_path):
    """`--accelerator cpu --devices 2`: DDP over gloo; rank 0 gathers every rank's parameter checksum."""
    run = tmp_path / "ddp"
    env = {**os.environ, "LVCG_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    args = [
        "pretrain", "--accelerator", "cpu", "--devices", "2", "--max-steps", "3", "--out", str(run),
        "--data.sim_records", "48", "--data.val_fraction", "0.1", "--train.batch_size", "4",
        "--train.log_every", "1", "--train.warmup_steps", "1",
        "--model.encoder_channels", "8,16", "--model.lifter_channels", "8", "--model.lifter_layers", "1",
        "--model.state_dim", "16", "--model.d_token", "16",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *args], capture_output=True, text=True, env=env, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "launching 2 cpu processes" in proc.stderr and "batch 4 x 2 process(es)" in proc.stderr
    assert proc.stdout.strip() == str(run / "final.pt")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = lines[-1]
    assert final["event"] == "final" and final["step"] == 3
    checksums = final["param_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]  # identical weights on both ranks
    assert [m["step"] for m in lines if "loss" in m] == [1, 2, 3]  # rank 0 alone writes metrics
    model, settings = load_model(run / "final.pt")
    assert settings.engine.devices == 2
    from lvcg_cli.engine.trainer import param_checksum

    assert param_checksum(model) == checksums[0]  # the saved weights are those the ranks agreed on


def _pretrain(run, *args: str, timeout: int = 240) -> list[dict]:
    env = {**os.environ, "LVCG_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    common = [
        "pretrain", "--accelerator", "cpu", "--max-steps", "3", "--out", str(run), "--data", "sim",
        "--train.log_every", "1", "--train.warmup_steps", "1", "--train.val_records", "8",
        # only the terms whose element count is the same for every sample (9 hidden leads x T ...):
        # then the mean over ranks of each rank's mean is the mean over the global batch
        "--train.visible", "random", "--train.visible_min", "3", "--train.visible_max", "3",
        "--train.loss.beat", "0", "--train.loss.temporal", "0", "--train.loss.invariance", "0",
        # >= 16 channels: with 8 (one channel per GroupNorm group) a conv bias before the norm has
        # no gradient at all, and AdamW turns its rounding noise into steps that differ between runs
        "--model.encoder_channels", "16,32", "--model.lifter_channels", "16", "--model.lifter_layers", "1",
        "--model.state_dim", "16", "--model.d_token", "16",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *common, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_the_same_global_batch(tmp_path):
    """2 gloo ranks x batch 4 == 1 process x batch 8: the same samples per step (rank r takes every
    other index of the same shuffled order), the same loss at every step, the same weights after."""
    from lvcg_cli.engine.trainer import param_checksum

    ddp = _pretrain(tmp_path / "ddp", "--devices", "2", "--train.batch_size", "4")
    one = _pretrain(tmp_path / "one", "--devices", "1", "--train.batch_size", "8")
    losses = {name: [m["loss"] for m in lines if "loss" in m] for name, lines in (("ddp", ddp), ("one", one))}
    assert len(losses["ddp"]) == len(losses["one"]) == 3
    np.testing.assert_allclose(losses["ddp"], losses["one"], rtol=1e-5)
    assert losses["one"][2] != losses["one"][0]  # the weights moved: the steps compared are real
    a, _ = load_model(tmp_path / "ddp" / "final.pt")
    b, _ = load_model(tmp_path / "one" / "final.pt")
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)  # lr 2e-3: steps move 1e-3
    checksums = ddp[-1]["param_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1] == param_checksum(a)
