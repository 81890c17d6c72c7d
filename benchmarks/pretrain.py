"""Pretraining throughput: samples/s and peak memory of training steps.

    python benchmarks/pretrain.py                 # CPU: lvcg-tiny and lvcg-base, then 1 vs 2 gloo processes
    python benchmarks/pretrain.py --skip-ddp      # only the per-model step figures
    python benchmarks/pretrain.py --only-gpu      # CUDA: lvcg-base, batch 64, bf16 (goal: >= 2,500 samples/s on one H100)

Each model is measured in its own subprocess so that peak memory (CPU: peak RSS; CUDA:
``torch.cuda.max_memory_allocated``) belongs to that model alone. "step" figures time the
optimiser step on one fixed batch already in memory (forward, loss, backward, clip, AdamW), i.e.
the model's cost; the 1-vs-2-process figures run the real ``lvcg pretrain`` loop end to end
(data loading, DDP all-reduce) and report the median samples/s logged in metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure_steps(
    preset: str, device: str, batch: int, steps: int, precision: str, compile_model: bool
) -> dict:
    """Time ``steps`` training steps of one model on one device (runs inside a subprocess)."""
    import numpy as np
    import torch

    from lvcg_cli.datasets.default import simulated
    from lvcg_cli.datasets.torch_data import collate
    from lvcg_cli.engine.device import autocast, select_precision
    from lvcg_cli.engine.trainer import build_optimizer
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import resolve_settings
    from lvcg_cli.signals.model_input import make_sample

    settings = resolve_settings(preset=preset, overrides={"engine.precision": precision})
    dev = torch.device(device)
    rng = np.random.default_rng(0)
    signals = np.asarray(
        simulated(batch, 0, settings.data)[0], dtype=np.float32
    )  # preprocessed like the cache
    samples = []
    for i in range(batch):
        visible = np.zeros(12, dtype=bool)
        visible[rng.choice(12, size=3, replace=False)] = True
        samples.append(
            make_sample(signals[i], np.ones(12, dtype=bool), visible, settings.data, settings.model)
        )
    batch_dict = {k: v.to(dev) for k, v in collate(samples).items()}

    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).to(dev)
    optimizer = build_optimizer(model, settings.train)
    run = torch.compile(model) if compile_model else model
    prec = select_precision(dev, precision)

    def step() -> None:
        with autocast(dev, prec):
            out = run(batch_dict)
            loss = model.loss(batch_dict, out, settings.train.loss)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "preset": preset,
        "device": device,
        "precision": prec.name,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "samples_per_s": round(steps * batch / seconds, 1),
        "ms_per_step": round(1000 * seconds / steps, 1),
        "peak_mem_MB": round(peak_mb, 1),
    }


def _in_subprocess(**kw) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(kw)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def end_to_end(devices: int, steps: int, batch: int, workdir: Path) -> dict:
    """Median samples/s of the real `lvcg pretrain` loop with 1 or N gloo processes on the CPU."""
    run = workdir / f"ddp{devices}"
    env = {**os.environ, "LVCG_NO_PROGRESS": "1", "LVCG_HOME": str(workdir / "home")}
    cmd = [
        sys.executable, "-m", "lvcg_cli", "pretrain", "--accelerator", "cpu", "--devices", str(devices),
        "--max-steps", str(steps), "--out", str(run), "--train.batch_size", str(batch),
        "--train.log_every", "5", "--train.val_every", str(10 * steps), "-q",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    speeds = [m["samples_per_s"] for m in lines if "samples_per_s" in m][1:]  # skip the first window
    return {
        "processes": devices,
        "batch_per_process": batch,
        "samples_per_s": round(statistics.median(speeds), 1),
        "wall_s_incl_startup": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per model (default 10).")
    parser.add_argument("--batch", type=int, default=16, help="CPU batch size (default 16).")
    parser.add_argument("--skip-ddp", action="store_true", help="Skip the 1-vs-2-process comparison.")
    parser.add_argument("--only-gpu", action="store_true", help="Only the CUDA figure.")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU figure).")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_steps(**json.loads(args.one))))
        return

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores")
    if not args.only_gpu:
        for preset in ("lvcg-tiny", "lvcg-base"):
            r = _in_subprocess(
                preset=preset,
                device="cpu",
                batch=args.batch,
                steps=args.steps,
                precision="fp32",
                compile_model=False,
            )
            print(
                f"step  {r['preset']:9s} cpu  {r['precision']} batch {r['batch']:3d} threads {r['threads']}: "
                f"{r['samples_per_s']:8.1f} samples/s  {r['ms_per_step']:8.1f} ms/step  peak RSS {r['peak_mem_MB']:.0f} MB  "
                f"({r['params_M']}M params)"
            )
        if not args.skip_ddp:
            with tempfile.TemporaryDirectory() as tmp:
                for n in (1, 2):
                    r = end_to_end(n, steps=30, batch=args.batch, workdir=Path(tmp))
                    print(
                        f"loop  lvcg-tiny cpu  {r['processes']} process(es) x batch {r['batch_per_process']}: "
                        f"{r['samples_per_s']:8.1f} samples/s (median; {r['wall_s_incl_startup']} s wall incl. start-up)"
                    )
    if torch.cuda.is_available():
        r = _in_subprocess(
            preset="lvcg-base",
            device="cuda",
            batch=64,
            steps=max(args.steps, 50),
            precision="bf16",
            compile_model=args.compile,
        )
        print(
            f"step  lvcg-base {torch.cuda.get_device_name(0)} bf16 batch 64: {r['samples_per_s']:.0f} samples/s "
            f"{r['ms_per_step']:.1f} ms/step  peak {r['peak_mem_MB']:.0f} MB (goal >= 2,500 samples/s on one H100)"
        )
    else:
        print("no CUDA device: GPU figure skipped")


if __name__ == "__main__":
    main()
