"""Training-data throughput: samples/s of one worker and of N DataLoader workers, wall and CPU time.

    python benchmarks/dataloader.py                          # bundled real records, lvcg-base, workers 0,1,2
    python benchmarks/dataloader.py --reference              # also the pre-#15 pipeline, alternated
    python benchmarks/dataloader.py --data mimic --workers 0,4,8,15 --json out/dataloader.json

What is measured (``lvcg_cli.datasets.torch_data``, exactly as ``lvcg pretrain`` builds it):

* **per worker**: ``PretrainDataset.__getitem__`` in this process (record from the packed cache,
  visible-lead draw, z-scoring, R peaks on the visible leads, beat segments, tensors), over the
  items in sampler order. Rates per wall-second and per CPU-second of this process
  (``time.process_time``): on a shared machine the wall rate moves with other jobs, the CPU rate
  much less, so it is the one to compare and to project from.
* **loader, N workers**: ``build_loader`` (persistent workers, prefetch, batch 64, pinned memory on
  CUDA), timed over ``--batches`` batches after a warm-up. Wall samples/s as the training process
  receives them; CPU seconds of the workers (``/proc/<pid>/stat``, Linux) and of this process over
  the same window. In steady state the workers' queues are as full at the end as at the start, so
  worker CPU / samples received is the cost of a sample including collation and the hand-over.
* **projection** to ``--project`` workers (default 16): per-worker CPU rate x workers (one core
  each, no shared bottleneck), capped by what this process can receive (1 / its CPU per sample).

Data: by default the 337 bundled open records (PTB-XL and LUDB excerpts, real ECGs, 100 Hz, 10 s)
from the built-in ``default`` data set (simulated records are left out: the detector finds their
beats more easily), built in a temporary cache folder; ``--data`` takes prepared data sets like
``lvcg pretrain --data`` (every record of them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lvcg_cli.datasets.torch_data import (
    PretrainDataset,
    ResumableSampler,
    build_loader,
    open_sources,
    sample_rng,
)
from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.settings import resolve_settings

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _dataset(settings: Any, real_only: bool) -> PretrainDataset:
    sources = open_sources(settings)
    rows = []
    for s, source in enumerate(sources):
        index = np.arange(len(source))
        if real_only:
            index = np.flatnonzero(source.cache.manifest["source"].astype(str).to_numpy() != "simulator")
        rows.append(np.stack([np.full(index.size, s), index], axis=1))
    items = np.concatenate(rows).astype(np.int64)
    visible = VisibleLeads.from_settings(settings.train)
    return PretrainDataset(sources, items, settings.data, settings.model, visible=visible, seed=0)


def _reference_item(data: PretrainDataset, i: int) -> dict[str, torch.Tensor]:
    """Item ``i`` through the frozen pre-#15 pipeline (tests/reference_pipeline.py)."""
    import reference_pipeline

    signal, present = data._record(i)
    visible = data.visible.draw(present, sample_rng(data.seed, data.epoch, i, data.stream))
    return reference_pipeline.make_sample(signal, present, visible, data.data, data.model)


def per_worker(data: PretrainDataset, samples: int, reference: bool, chunk: int = 100) -> dict[str, Any]:
    """Samples/s of __getitem__ in this process (and of the reference pipeline, alternated by chunk)."""
    order = list(ResumableSampler(data, num_replicas=1, rank=0, seed=0))
    order = [order[k % len(order)] for k in range(samples)]
    for i in order[:20]:  # warm-up: imports, filter design, page cache
        data[i]
    kinds = {"current": data.__getitem__}
    if reference:
        kinds["reference"] = lambda i: _reference_item(data, i)
    totals = {k: [0.0, 0.0, 0] for k in kinds}
    for start in range(0, samples, chunk):
        block = order[start : start + chunk]
        for name, get in kinds.items():  # alternate, so both see the same machine load
            wall, cpu = time.perf_counter(), time.process_time()
            for i in block:
                get(i)
            totals[name][0] += time.perf_counter() - wall
            totals[name][1] += time.process_time() - cpu
            totals[name][2] += len(block)
    return {
        name: {
            "samples": n,
            "per_wall_s": round(n / wall, 1),
            "per_cpu_s": round(n / cpu, 1),
            "cpu_ms_per_sample": round(1000 * cpu / n, 3),
        }
        for name, (wall, cpu, n) in totals.items()
    }


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def loader_rate(
    data: PretrainDataset, workers: int, batch: int, batches: int, device: torch.device
) -> dict[str, Any]:
    """Samples/s that ``workers`` DataLoader workers deliver to this process, with CPU costs."""
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=0)
    loader = build_loader(
        data, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers, device=device, seed=0
    )
    per_epoch = len(sampler) // batch
    if per_epoch == 0:
        raise SystemExit(f"only {len(sampler)} records for batch {batch}")
    warmup = max(3, 2 * workers)

    def batches_forever():
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    stream = batches_forever()
    for _ in range(warmup):  # workers started, queues filled
        next(stream)
    iterator = loader._iterator  # noqa: SLF001 - the worker processes, for their CPU time
    pids = [w.pid for w in getattr(iterator, "_workers", [])]
    worker_cpu0 = sum(_cpu_seconds(p) for p in pids) if pids else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    received = 0
    for _ in range(batches):
        out = next(stream)
        if device.type == "cuda":
            out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
        received += out["signal"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - wall
    main_cpu = time.process_time() - cpu
    pids = [w.pid for w in getattr(loader._iterator, "_workers", [])]  # noqa: SLF001
    worker_cpu = (sum(_cpu_seconds(p) for p in pids) - worker_cpu0) if pids else 0.0
    stream.close()
    if pids:
        loader._iterator._shutdown_workers()  # noqa: SLF001 - free the cores for the next count
    result: dict[str, Any] = {
        "workers": workers,
        "batch": batch,
        "samples": received,
        "per_wall_s": round(received / wall, 1),
        "main_cpu_ms_per_sample": round(1000 * main_cpu / received, 3),
        "main_receive_limit_per_s": round(received / main_cpu, 1) if main_cpu > 0 else None,
    }
    if workers:
        result["worker_cpu_ms_per_sample"] = round(1000 * worker_cpu / received, 3)
        result["per_worker_cpu_s"] = round(received / worker_cpu, 1) if worker_cpu > 0 else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="*", help="Prepared data sets (default: the bundled open records).")
    parser.add_argument(
        "--preset", default="lvcg-base", help="Model preset (beat settings; default lvcg-base)."
    )
    parser.add_argument("--samples", type=int, default=3000, help="Samples timed in process (default 3000).")
    parser.add_argument("--workers", default="0,1,2", help="Worker counts to time (default 0,1,2).")
    parser.add_argument("--batch", type=int, default=64, help="Batch size (default 64).")
    parser.add_argument(
        "--batches", type=int, default=60, help="Timed batches per worker count (default 60)."
    )
    parser.add_argument("--project", type=int, default=16, help="Workers to project to (default 16).")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available).")
    parser.add_argument(
        "--reference", action="store_true", help="Also time the pre-#15 pipeline (alternated)."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()

    torch.set_num_threads(1)  # as in a DataLoader worker
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {}
        if args.data:
            overrides["data.datasets"] = list(args.data)
        else:
            os.environ.setdefault("LVCG_CACHE_DIR", str(Path(tmp) / "cache"))
        settings = resolve_settings(preset=args.preset, overrides=overrides)
        data = _dataset(settings, real_only=not args.data)
        if args.reference:
            sys.path.insert(0, str(REPO / "tests"))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load:.1f}, "
            f"{len(data)} records, preset {args.preset}, device {device.type}"
        )
        report: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "load_average_1min": load, "platform": platform.platform()},
            "records": len(data),
            "preset": args.preset,
        }
        report["per_worker"] = per_worker(data, args.samples, args.reference)
        for name, r in report["per_worker"].items():
            print(
                f"per worker ({name:9s}): {r['per_wall_s']:8.1f} samples/wall-s  {r['per_cpu_s']:8.1f} samples/CPU-s"
                f"  ({r['cpu_ms_per_sample']:.3f} CPU-ms per sample, {r['samples']} samples)"
            )
        report["loader"] = []
        for n in [int(v) for v in args.workers.split(",") if v.strip()]:
            r = loader_rate(data, n, args.batch, args.batches, device)
            report["loader"].append(r)
            worker = (
                f"; workers {r['worker_cpu_ms_per_sample']:.3f} CPU-ms/sample = {r['per_worker_cpu_s']} samples per worker-CPU-s"
                if n
                else ""
            )
            print(
                f"loader {n:2d} worker(s), batch {args.batch}: {r['per_wall_s']:8.1f} samples/wall-s; "
                f"training process {r['main_cpu_ms_per_sample']:.3f} CPU-ms/sample{worker}"
            )
        timed = [r for r in report["loader"] if r["workers"] and r.get("per_worker_cpu_s")]
        if timed:
            per_worker_rate = min(r["per_worker_cpu_s"] for r in timed)  # the most pessimistic
            receive = min(r["main_receive_limit_per_s"] for r in timed if r["main_receive_limit_per_s"])
            projected = min(args.project * per_worker_rate, receive)
            report["projection"] = {
                "workers": args.project,
                "per_worker_cpu_s": per_worker_rate,
                "receive_limit_per_s": receive,
                "samples_per_s": round(projected, 0),
            }
            print(
                f"projection, {args.project} workers: min({args.project} x {per_worker_rate:.0f}, receive limit "
                f"{receive:.0f}) = {projected:,.0f} samples/s"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
