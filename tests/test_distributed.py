"""Distributed pretraining without a GPU: two gloo processes through torch's elastic launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    with pytest.raises(LvcgError, match=r"^--gpus 3: only 2 CUDA device\(s\) visible on this machine$"):
        distributed.plan_launch(EngineSettings(accelerator="cuda", devices=3), environ={})
    with pytest.raises(LvcgError, match="DistributedDataParallel is not supported on Apple GPUs"):
        distributed.plan_launch(EngineSettings(accelerator="mps", devices=2), environ={})


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
