"""The CUDA path: what runs on a GPU computes what runs on the CPU.

Marked ``gpu``: they run wherever CUDA exists and skip (with the reason) elsewhere; on a GPU machine
``pytest -m gpu`` runs exactly these (``scripts/gpu_check.sh``). The CPU twin of the one-GPU DDP
test (gloo, one rank) runs everywhere, so the helper itself is tested in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from lvcg_cli.engine.device import autocast, select_precision
from lvcg_cli.engine.trainer import build_optimizer
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import resolve_settings

CUDA = torch.cuda.is_available()

SMALL = {
    "model.encoder_channels": "16,32",
    "model.lifter_channels": 16,
    "model.lifter_layers": 2,
    "model.state_dim": 32,
    "model.d_token": 32,
}


def real_batch(settings, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` bundled open records (PTB-XL/LUDB excerpts) as training samples, visible leads drawn."""
    from lvcg_cli.datasets.default import open_records_batch

    return open_records_batch(settings, n, seed)


def to(batch: dict[str, torch.Tensor], device: str | torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


@contextlib.contextmanager
def exact_cuda_math():
    """No TF32 in matmuls/convolutions (the trainer enables it): compare fp32 with fp32."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forward_backward(model, batch, settings, device, precision="fp32"):
    model.zero_grad(set_to_none=True)
    prec = select_precision(torch.device(device), precision)
    with autocast(torch.device(device), prec):
        out = model(batch)
        losses = model.loss(batch, out, settings.train.loss)
    losses["total"].backward()
    grads = {
        n: p.grad.detach().float().cpu().clone() for n, p in model.named_parameters() if p.grad is not None
    }
    return out, {k: float(v.detach()) for k, v in losses.items()}, grads


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["lvcg-tiny", "lvcg-base"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_forward_and_backward_equal_the_cpu(preset):
    settings = resolve_settings(preset=preset)
    batch = real_batch(settings, 8, seed=1)
    torch.manual_seed(0)
    cpu_model = build_model(settings.model, settings.data)
    gpu_model = build_model(settings.model, settings.data).cuda()
    gpu_model.load_state_dict(cpu_model.state_dict())
    cpu_out, cpu_loss, cpu_grads = forward_backward(cpu_model, batch, settings, "cpu")
    with exact_cuda_math():
        gpu_out, gpu_loss, gpu_grads = forward_backward(gpu_model, to(batch, "cuda"), settings, "cuda")
    for key in ("lifted", "tokens", "states", "beats_out", "field", "recon"):
        want, got = cpu_out[key].detach(), gpu_out[key].detach().cpu()
        scale = max(1.0, float(want.abs().max()))
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * scale, msg=key)
    for name, value in cpu_loss.items():
        assert gpu_loss[name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    assert cpu_grads.keys() == gpu_grads.keys()
    for name, g in cpu_grads.items():
        err = float((gpu_grads[name] - g).norm()) / max(float(g.norm()), 1e-12)
        assert err < 1e-2 or float(g.norm()) < 1e-8, (name, err)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA or not torch.cuda.is_bf16_supported(), reason="no CUDA device with bf16")
def test_bf16_autocast_runs_and_its_loss_is_close_to_fp32():
    settings = resolve_settings(preset="lvcg-base")
    batch = to(real_batch(settings, 16, seed=2), "cuda")
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).cuda()
    assert select_precision(torch.device("cuda"), "auto").name == "bf16"  # what a GPU run uses
    with exact_cuda_math():
        out32, loss32, grads32 = forward_backward(model, batch, settings, "cuda", "fp32")
    out16, loss16, grads16 = forward_backward(model, batch, settings, "cuda", "bf16")
    assert out16["recon"].dtype == torch.bfloat16 or out16["recon"].dtype == torch.float32
    for name, value in loss32.items():
        assert np.isfinite(loss16[name]), name
        assert loss16[name] == pytest.approx(value, rel=3e-2, abs=1e-4), name
    flat32 = torch.cat([g.flatten() for g in grads32.values()])
    flat16 = torch.cat([grads16[n].flatten() for n in grads32])
    assert torch.isfinite(flat16).all()
    assert float(torch.nn.functional.cosine_similarity(flat16, flat32, dim=0)) > 0.99


def test_bf16_autocast_step_runs_on_the_cpu_too():
    """The same autocast path as a GPU run (bf16 linear/conv outputs), checked in CI without a GPU."""
    settings = resolve_settings(preset="lvcg-tiny", overrides=SMALL)
    batch = real_batch(settings, 4, seed=4)
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data)
    _, loss32, _ = forward_backward(model, batch, settings, "cpu", "fp32")
    _, loss16, grads16 = forward_backward(model, batch, settings, "cpu", "bf16")
    assert all(torch.isfinite(g).all() for g in grads16.values())
    assert loss16["total"] == pytest.approx(loss32["total"], rel=3e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_fused_adamw_and_pinned_batches_on_cuda():
    from lvcg_cli.datasets.torch_data import PretrainDataset, ResumableSampler, build_loader

    settings = resolve_settings(preset="lvcg-tiny", overrides=SMALL)
    model = build_model(settings.model, settings.data)
    assert not build_optimizer(model, settings.train).defaults["fused"]
    assert build_optimizer(model.cuda(), settings.train).defaults["fused"] is True

    class Source:
        def __init__(self):
            from lvcg_cli.datasets.default import load_open_records

            self.signals, self.present, _ = load_open_records(settings.data)

        def __len__(self):
            return 32

        def get(self, i):
            return self.signals[i].astype(np.float32), self.present[i]

    items = np.stack([np.zeros(32, np.int64), np.arange(32)], axis=1)
    data = PretrainDataset(
        [Source()],
        items,
        settings.data,
        settings.model,
        visible=VisibleLeads.from_settings(settings.train),
        seed=0,
    )
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=0)
    loader = build_loader(
        data,
        batch_size=8,
        sampler=sampler,
        drop_last=True,
        num_workers=2,
        device=torch.device("cuda"),
        seed=0,
    )
    batch = next(iter(loader))
    assert all(v.is_pinned() for v in batch.values())
    moved = {k: v.to("cuda", non_blocking=True) for k, v in batch.items()}
    torch.cuda.synchronize()
    assert all(torch.equal(moved[k].cpu(), v) for k, v in batch.items())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_checkpoints_move_between_gpu_and_cpu(tmp_path):
    settings = resolve_settings(preset="lvcg-tiny")
    batch = real_batch(settings, 4, seed=3)
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).cuda()
    optimizer = build_optimizer(model, settings.train)
    forward_backward(model, to(batch, "cuda"), settings, "cuda")
    optimizer.step()  # the optimiser state lives on the GPU too
    gpu_path = tmp_path / "gpu.pt"
    save_checkpoint(gpu_path, model=model, settings=settings, step=1, optimizer=optimizer)

    on_cpu, _ = load_model(gpu_path, device="cpu")
    for (name, p), q in zip(on_cpu.named_parameters(), model.parameters(), strict=True):
        assert p.device.type == "cpu" and torch.equal(p, q.detach().cpu()), name
    state = load_checkpoint(gpu_path, map_location="cpu")["optimizer"]["state"]
    assert all(t.device.type == "cpu" for s in state.values() for t in s.values() if torch.is_tensor(t))

    cpu_path = tmp_path / "cpu.pt"
    save_checkpoint(cpu_path, model=on_cpu, settings=settings, step=1)
    on_gpu, _ = load_model(cpu_path, device="cuda")
    for (name, p), q in zip(on_gpu.named_parameters(), on_cpu.parameters(), strict=True):
        assert p.device.type == "cuda" and torch.equal(p.cpu(), q), name
    with torch.no_grad(), exact_cuda_math():
        a = on_gpu.eval()(to(batch, "cuda"))["recon"].cpu()
        b = on_cpu.eval()(batch)["recon"]
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * max(1.0, float(b.abs().max())))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("first,then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_started_on_one_device_resumes_on_the_other(tmp_path, first, then):
    run = tmp_path / "run"
    env = {**os.environ, "LVCG_NO_PROGRESS": "1"}
    args = [
        "--data.sim_records", "32", "--train.batch_size", "4", "--train.log_every", "1", "--train.ckpt_every", "2",
        "--train.val_every", "100", "--out", str(run),
        "--engine.precision", "fp32",  # devices only: bf16 has its own test (and a known model bug, see above)
        *[x for k, v in SMALL.items() for x in (f"--{k}", str(v))],
    ]  # fmt: skip

    def pretrain(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lvcg_cli", "pretrain", *args, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    proc = pretrain("--max-steps", "2", "--engine.device", first)
    assert proc.returncode == 0, proc.stderr
    proc = pretrain("--resume", "--max-steps", "4", "--engine.device", then)
    assert proc.returncode == 0, proc.stderr
    assert "resuming at step 2" in proc.stderr
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if "loss" in m] == [1, 2, 3, 4]
    assert all(np.isfinite(m["loss"]) for m in lines if "loss" in m)
    model, settings = load_model(run / "final.pt")
    assert settings.engine.device == then


# --------------------------------------------------------------------------------------------
def ddp_matches_plain_training(device: str, backend: str, store: Path, steps: int = 3) -> None:
    """DistributedDataParallel with one rank trains exactly like the bare model (same batches)."""
    import torch.distributed as dist

    settings = resolve_settings(preset="lvcg-tiny", overrides=SMALL)
    batches = [to(real_batch(settings, 4, seed=10 + s), device) for s in range(steps)]
    torch.manual_seed(0)
    plain = build_model(settings.model, settings.data).to(device)
    wrapped = build_model(settings.model, settings.data).to(device)
    wrapped.load_state_dict(plain.state_dict())
    dist.init_process_group(backend, init_method=f"file://{store}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(
            wrapped,
            device_ids=[torch.device(device).index or 0] if device.startswith("cuda") else None,
            find_unused_parameters=True,
        )
        runs = []
        for model, module in ((plain, plain), (ddp, wrapped)):
            optimizer = build_optimizer(module, settings.train)
            losses = []
            for batch in batches:
                loss = module.loss(batch, model(batch), settings.train.loss)["total"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                losses.append(loss.item())
            runs.append(losses)
    finally:
        dist.destroy_process_group()
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)
    assert runs[0][-1] != runs[0][0]
    for (name, p), q in zip(wrapped.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


def test_ddp_with_one_cpu_rank_trains_like_the_bare_model(tmp_path):
    ddp_matches_plain_training("cpu", "gloo", tmp_path / "store")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_ddp_with_one_gpu_trains_like_the_bare_model(tmp_path):
    with exact_cuda_math():
        ddp_matches_plain_training("cuda:0", "nccl", tmp_path / "store")
