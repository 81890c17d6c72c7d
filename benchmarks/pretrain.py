"""Pretraining throughput: samples/s and peak memory of training steps and of the real loop.

    python benchmarks/pretrain.py                 # CPU: lvcg-tiny and lvcg-base, then 1 vs 2 gloo processes
    python benchmarks/pretrain.py --skip-ddp      # only the per-model step figures
    python benchmarks/pretrain.py --only-gpu --out gpu-figures   # CUDA: lvcg-base, batch 64, bf16 and fp32

Each measurement runs in its own subprocess so that peak memory (CPU: peak RSS; CUDA:
``torch.cuda.max_memory_allocated``) belongs to it alone. "step" figures time the optimiser step
on one fixed batch already in memory (forward, loss, backward, clip, AdamW), i.e. the model's
cost; "loop" figures run the real training loop end to end.

``--only-gpu`` (issue #15; goals: lvcg-base in bf16 >= 4,500 samples/s sustained in the real loop
on one H100/H200-class GPU, no step slower in bf16 than in fp32, bf16 and fp32 loss curves within
the stated tolerance over the first few hundred steps) measures, for bf16 and for fp32:

* ``step``: samples/s of the bare step at batch 64 (fixed batch of real records, after warm-up),
  and the host-device synchronisations of one step (``torch.cuda.set_sync_debug_mode``: each
  operator that makes the host wait, with where it was called from);
* ``loop``: ``engine.trainer.train`` itself (DataLoader workers on the built-in data, autocast,
  DDP-free single GPU, metrics every ``--log-every`` steps) for ``--loop-steps`` steps; sustained
  samples/s = the median of the logged windows after the first 20 % (warm-up: workers starting,
  cuDNN choosing kernels), peak GPU memory, and the loss curve;
* the bf16 and fp32 loss curves compared window by window (same seed, same batches): the largest
  relative difference must stay within ``--loss-rtol`` (default 0.05).

Everything is printed and written to ``<out>/pretrain_gpu.json``; a part that fails is recorded
with its error (and the exit code is 1), the other parts still run.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_step import real_batch  # noqa: E402 - the benchmarks folder is not a package


def measure_steps(
    preset: str, device: str, batch: int, steps: int, precision: str, compile_model: bool
) -> dict:
    """Time ``steps`` training steps of one model on one device (runs inside a subprocess)."""
    import torch

    from lvcg_cli.engine.device import autocast, select_precision
    from lvcg_cli.engine.trainer import build_optimizer
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(preset=preset, overrides={"engine.precision": precision})
    dev = torch.device(device)
    batch_dict = {k: v.to(dev) for k, v in real_batch(settings, batch).items()}

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


def sync_points(preset: str, batch: int, precision: str) -> dict:
    """The host-device synchronisations of one CUDA training step, with the code that caused them."""
    import warnings

    import torch

    from lvcg_cli.engine.device import autocast, select_precision
    from lvcg_cli.engine.trainer import build_optimizer
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(preset=preset, overrides={"engine.precision": precision})
    dev = torch.device("cuda")
    batch_dict = {k: v.to(dev) for k, v in real_batch(settings, batch).items()}
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).to(dev)
    optimizer = build_optimizer(model, settings.train)
    prec = select_precision(dev, precision)

    def step() -> None:
        with autocast(dev, prec):
            out = model(batch_dict)
            loss = model.loss(batch_dict, out, settings.train.loss)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up outside the check
    torch.cuda.synchronize()
    found: dict[str, int] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for w in caught:
        if "synchroniz" not in str(w.message).lower():
            continue
        where = f"{Path(w.filename).name}:{w.lineno}"
        found[where] = found.get(where, 0) + 1
    return {
        "preset": preset,
        "batch": batch,
        "precision": precision,
        "syncs_per_step": sum(found.values()),
        "where": found,
    }


def measure_loop(
    preset: str, batch: int, steps: int, precision: str, log_every: int, workdir: str, device: str = "cuda"
) -> dict:
    """The real training loop (engine.trainer.train) on one device; runs inside a subprocess."""
    import statistics

    import torch

    from lvcg_cli.datasets.torch_data import resolve_num_workers
    from lvcg_cli.engine.distributed import DistContext
    from lvcg_cli.engine.trainer import train
    from lvcg_cli.settings import resolve_settings

    os.environ.setdefault("LVCG_NO_PROGRESS", "1")
    os.environ["LVCG_CACHE_DIR"] = str(Path(workdir) / "cache")
    run = Path(workdir) / f"loop-{precision}"
    run.mkdir(parents=True, exist_ok=True)
    settings = resolve_settings(
        preset=preset,
        overrides={
            "engine.precision": precision,
            "engine.device": device,
            "train.batch_size": batch,
            "train.max_steps": steps,
            "train.log_every": log_every,
            "train.val_every": 10 * steps,
            "train.ckpt_every": 10 * steps,
            "train.val_records": 256,
            "data.sim_records": 4096,  # several hundred steps per epoch
            "run.out": str(run),
        },
    )
    on_cuda = device.startswith("cuda")
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    result = train(settings, run, DistContext(device=torch.device(device)))
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if on_cuda else None
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    windows = [m for m in lines if "samples_per_s" in m]
    sustained = [m["samples_per_s"] for m in windows[max(1, len(windows) // 5) :]]
    return {
        "preset": preset,
        "precision": precision,
        "batch": batch,
        "steps": result.step,
        "data_workers": resolve_num_workers(settings.data.num_workers, torch.device(device).type),
        "sustained_samples_per_s": round(statistics.median(sustained), 1),
        "min_window_samples_per_s": round(min(sustained), 1),
        "wall_s": round(result.seconds, 1),
        "peak_gpu_memory_MB": round(peak_mb, 1) if peak_mb is not None else None,
        "loss_curve": [[m["step"], m["loss"]] for m in windows],
        "val_loss": [result.first_val_loss, result.val_loss],
    }


def _in_subprocess(fn: str = "steps", **kw) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps({"fn": fn, **kw})],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_curves(a: list, b: list, rtol: float) -> dict:
    """Window-by-window relative difference of two loss curves logged at the same steps."""
    fp32 = dict((int(s), v) for s, v in b)
    pairs = [(int(s), v, fp32[int(s)]) for s, v in a if int(s) in fp32]
    rel = [abs(x - y) / abs(y) for _, x, y in pairs if y]
    worst = max(rel) if rel else None
    return {
        "windows": len(rel),
        "max_rel_diff": round(worst, 4) if worst is not None else None,
        "mean_rel_diff": round(sum(rel) / len(rel), 4) if rel else None,
        "rtol": rtol,
        "within_tolerance": worst is not None and worst <= rtol,
    }


def gpu_figures(args: argparse.Namespace) -> int:
    """The --only-gpu measurements; returns the exit code (1 if any part failed)."""
    import torch

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "goal_samples_per_s": 4500}
    failed = False
    device, preset = args.device, args.preset
    on_cuda = device.startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        report["skipped"] = "no CUDA device"
        print("no CUDA device: GPU figures skipped")
        (out_dir / "pretrain_gpu.json").write_text(json.dumps(report, indent=1))
        return 0
    report["device"] = torch.cuda.get_device_name(0) if on_cuda else "cpu (dry run of the script)"
    report["preset"] = preset
    report["cpus"] = os.cpu_count()
    print(
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {report['device']}, {os.cpu_count()} CPUs"
    )

    def attempt(name: str, fn: str, **kw) -> dict | None:
        nonlocal failed
        try:
            r = _in_subprocess(fn, **kw)
        except RuntimeError as exc:
            failed = True
            report.setdefault("errors", {})[name] = str(exc)
            print(f"{name}: FAILED: {exc}")
            return None
        report[name] = r
        return r

    for precision in ("bf16", "fp32"):
        r = attempt(
            f"step_{precision}",
            "steps",
            preset=preset,
            device=device,
            batch=args.gpu_batch,
            steps=args.gpu_steps,
            precision=precision,
            compile_model=args.compile,
        )
        if r:
            print(
                f"step  {preset} {precision} batch {r['batch']}: {r['samples_per_s']:8.0f} samples/s {r['ms_per_step']:7.1f} ms/step"
                f"  peak {r['peak_mem_MB']:.0f} MB"
            )
        if on_cuda:
            r = attempt(
                f"syncs_{precision}", "syncs", preset=preset, batch=args.gpu_batch, precision=precision
            )
            if r:
                print(f"sync  {preset} {precision}: {r['syncs_per_step']} per step: {r['where']}")
    for precision in ("bf16", "fp32"):
        with tempfile.TemporaryDirectory() as tmp:
            r = attempt(
                f"loop_{precision}",
                "loop",
                preset=preset,
                batch=args.gpu_batch,
                steps=args.loop_steps,
                precision=precision,
                log_every=args.log_every,
                workdir=tmp,
                device=device,
            )
        if r:
            print(
                f"loop  {preset} {precision} batch {r['batch']}, {r['steps']} steps, {r['data_workers']} workers: "
                f"{r['sustained_samples_per_s']:8.0f} samples/s sustained (slowest window {r['min_window_samples_per_s']:.0f})"
                f"  peak {r['peak_gpu_memory_MB']} MB  ({r['wall_s']} s)"
            )
    if "step_bf16" in report and "step_fp32" in report:
        report["bf16_step_not_slower"] = (
            report["step_bf16"]["samples_per_s"] >= report["step_fp32"]["samples_per_s"]
        )
    if "loop_bf16" in report and "loop_fp32" in report:
        cmp = compare_curves(
            report["loop_bf16"]["loss_curve"], report["loop_fp32"]["loss_curve"], args.loss_rtol
        )
        report["loss_curves"] = cmp
        print(
            f"loss curves bf16 vs fp32 over {cmp['windows']} windows of {args.log_every} steps: "
            f"max relative difference {cmp['max_rel_diff']} (mean {cmp['mean_rel_diff']}; tolerance {args.loss_rtol}): "
            + ("within" if cmp["within_tolerance"] else "OUTSIDE")
        )
        report["goal_met"] = report["loop_bf16"]["sustained_samples_per_s"] >= report["goal_samples_per_s"]
    (out_dir / "pretrain_gpu.json").write_text(json.dumps(report, indent=1))
    print(f"figures written to {out_dir / 'pretrain_gpu.json'}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per CPU model (default 10).")
    parser.add_argument("--batch", type=int, default=16, help="CPU batch size (default 16).")
    parser.add_argument("--skip-ddp", action="store_true", help="Skip the 1-vs-2-process comparison.")
    parser.add_argument("--only-gpu", action="store_true", help="Only the CUDA figures (see above).")
    parser.add_argument("--out", default="gpu-figures", help="Folder for pretrain_gpu.json (--only-gpu).")
    parser.add_argument("--gpu-steps", type=int, default=50, help="Timed bare steps on the GPU (default 50).")
    parser.add_argument("--loop-steps", type=int, default=300, help="Steps of the real loop (default 300).")
    parser.add_argument("--log-every", type=int, default=10, help="Loop metric window in steps (default 10).")
    parser.add_argument(
        "--loss-rtol", type=float, default=0.05, help="bf16 vs fp32 loss tolerance per window (default 0.05)."
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU step figure).")
    parser.add_argument("--preset", default="lvcg-base", help=argparse.SUPPRESS)  # --only-gpu dry runs
    parser.add_argument("--gpu-batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kw = json.loads(args.one)
        fn = {"steps": measure_steps, "loop": measure_loop, "syncs": sync_points}[kw.pop("fn", "steps")]
        print(json.dumps(fn(**kw)))
        return
    if args.only_gpu:
        raise SystemExit(gpu_figures(args))

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores")
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
    if not torch.cuda.is_available():
        print("no CUDA device: GPU figures skipped (--only-gpu measures them on a GPU machine)")


if __name__ == "__main__":
    main()
