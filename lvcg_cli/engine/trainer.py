"""The pretraining loop: masked-lead reconstruction through the latent VCG.

One function, :func:`train`, reads top to bottom like nanoGPT's loop: data, model, optimiser,
(resume), then ``for step``: forward under autocast, loss, backward, clip, step, schedule; with
metrics, validation and checkpoints at fixed intervals. It runs the same in one process and in
each rank of a DistributedDataParallel job (rank 0 alone writes and logs).

Reproducibility: parameters are initialised from ``engine.seed`` on every rank (DDP also
broadcasts rank 0's), each rank then seeds ``seed + rank``; batches come from an epoch-seeded
sampler and per-sample generators, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import TextColumn
from torch import nn
from torch.utils.data import DataLoader

from lvcg_cli import console
from lvcg_cli.atomic import write_text_atomic
from lvcg_cli.datasets.torch_data import (
    VAL_STREAM,
    PretrainDataset,
    ResumableSampler,
    build_loader,
    collate,
    open_sources,
    resolve_num_workers,
    split_items,
)
from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.engine.checkpoint import (
    capture_rng,
    check_compatible,
    check_state,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from lvcg_cli.engine.device import autocast, describe, gru_device, seed_everything, select_precision
from lvcg_cli.engine.distributed import (
    DistContext,
    all_gather_object,
    all_reduce_mean,
    any_rank,
    broadcast_object,
)
from lvcg_cli.engine.schedule import WarmupCosine, build_scheduler
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import Settings, TrainSettings

CKPT_PATTERN = re.compile(r"^ckpt-(\d+)\.pt$")
BEST_NAME = "best.pt"
"""The checkpoint with the lowest validation loss so far (model selection on validation, never test)."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) run left behind; returned by rank 0."""

    run_dir: Path
    step: int
    max_steps: int
    checkpoint: Path | None  # final.pt, or the checkpoint saved on interruption
    interrupted: bool
    train_loss: float | None
    val_loss: float | None
    first_val_loss: float | None
    seconds: float


# --------------------------------------------------------------------------------------------
# pieces of the loop
# --------------------------------------------------------------------------------------------
def build_optimizer(model: nn.Module, train: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices/kernels only (not on biases and norm scales)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW(groups, lr=train.lr, fused=fused or None)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


class StopFlag:
    """First Ctrl-C: finish the current step, save, stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread (e.g. some test runners): Ctrl-C stays default
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def checkpoints_in(run_dir: Path) -> list[tuple[int, Path]]:
    """Periodic checkpoints of a run folder, oldest first."""
    found = []
    for path in run_dir.glob("ckpt-*.pt"):
        match = CKPT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint to resume a run folder from: the one with the highest step."""
    candidates = [(step, path) for step, path in checkpoints_in(run_dir)]
    final = run_dir / "final.pt"
    if final.is_file():
        try:
            step = int(torch.load(final, map_location="cpu", weights_only=True)["step"])
        except Exception:
            step = -1
        candidates.append((step, final))
    return max(candidates)[1] if candidates else None


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    for _, path in checkpoints_in(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, drop metric lines past the checkpoint so the curve is not logged twice."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _best_val_so_far(path: Path, step: int) -> float | None:
    """The lowest validation loss logged up to ``step`` (a resumed run keeps its best.pt honest)."""
    if step == 0 or not path.is_file():
        return None
    values = [
        float(rec["val_loss"])
        for line in path.read_text().splitlines()
        if line.strip() and "val_loss" in (rec := json.loads(line)) and rec.get("step", 0) <= step
    ]
    return min(values) if values else None


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed as written (rank 0 only)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._handle = open(path, "a") if path is not None else None  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        if self._handle is not None:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def param_checksum(model: nn.Module) -> float:
    """A float64 fingerprint of all parameters (identical on every rank of a healthy DDP job)."""
    with torch.no_grad():
        total = torch.zeros((), dtype=torch.float64)
        for i, p in enumerate(model.parameters()):
            total += (p.detach().double().cpu().flatten() * (1.0 + 1e-3 * i)).sum()
            total += p.detach().double().cpu().pow(2).sum()
    return float(total)


def has_unused_parameters(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    train: TrainSettings,
    device: torch.device,
    precision: Any,
) -> bool:
    """Whether some parameters get no gradient from the loss (e.g. a term weighted 0).

    DistributedDataParallel must be told (``find_unused_parameters``), and the check is cheaper
    than always searching the graph: one forward/backward before training, with the random state
    put back afterwards so the run is unchanged.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        batch = to_device(batch, device)
        with autocast(device, precision):
            losses = model.loss(batch, model(batch), train.loss)
        losses["total"].backward()
    unused = any(p.requires_grad and p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    return unused


def wrap_model(
    raw_model: nn.Module, ctx: DistContext, *, compile_model: bool, find_unused_parameters: bool = False
) -> nn.Module:
    """The module the loop calls: DistributedDataParallel across ranks, then ``torch.compile``.

    In that order, as PyTorch recommends: the compiler then sees DDP's gradient buckets and
    splits its graphs at their boundaries, so all-reduces overlap the backward pass. Checkpoints,
    validation and the loss keep using ``raw_model`` (same parameters, no wrappers in the names).
    """
    model = raw_model
    if ctx.distributed:
        device = ctx.device
        model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
        )
    return torch.compile(model) if compile_model else model


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, settings: Settings, ctx: DistContext, precision: Any
) -> dict[str, float]:
    """Mean of each loss term over this rank's validation shard, averaged over ranks."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), device=ctx.device)
    for batch in loader:
        batch = to_device(batch, ctx.device)
        with autocast(ctx.device, precision):
            out = model(batch)
            losses = model.loss(batch, out, settings.train.loss)
        n = next(iter(batch.values())).shape[0]
        for name, value in losses.items():
            sums[name] = sums.get(name, torch.zeros((), device=ctx.device)) + value.detach().float() * n
        count += n
    model.train(was_training)
    names = sorted(sums)
    packed = torch.stack([sums[k] for k in names] + [count]) if names else count[None]
    if ctx.distributed:
        torch.distributed.all_reduce(packed)
    total_count = max(float(packed[-1].item()), 1.0)
    return {name: float(packed[i].item()) / total_count for i, name in enumerate(names)}


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def train(settings: Settings, run_dir: Path, ctx: DistContext, resume: Path | None = None) -> TrainResult:
    """Pretrain a model as ``settings`` say, writing into ``run_dir`` (rank 0); see module doc."""
    from lvcg_cli.model.registry import build_model

    t, seed = settings.train, settings.engine.seed
    run_dir = Path(run_dir)
    device = ctx.device
    precision = select_precision(device, settings.engine.precision)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # ---- data
    sources = open_sources(settings)
    split = split_items(sources, settings.data.val_fraction, seed)
    sample_args = {"visible": VisibleLeads.from_settings(t), "seed": seed}
    train_set = PretrainDataset(sources, split.train, settings.data, settings.model, **sample_args)
    all_val = split.val[: t.val_records]
    if 0 < len(all_val) < ctx.world_size:  # every rank needs a shard (the reductions must match)
        all_val = np.resize(all_val, (ctx.world_size, 2))
    val_items = all_val[ctx.rank :: ctx.world_size]
    val_set = PretrainDataset(
        sources, val_items, settings.data, settings.model, stream=VAL_STREAM, **sample_args
    )
    sampler = ResumableSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, seed=seed)
    steps_per_epoch = sampler.num_samples // t.batch_size
    if steps_per_epoch == 0:
        raise LvcgError(
            f"only {len(train_set)} training records for batch_size {t.batch_size} x {ctx.world_size} process(es); "
            "use more data or a smaller --train.batch_size"
        )
    workers = resolve_num_workers(settings.data.num_workers, device.type)
    loader = build_loader(
        train_set,
        batch_size=t.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        device=device,
        seed=seed,
    )
    # Validation has few batches (val_records / batch_size per rank): no more workers than those.
    val_batches = math.ceil(len(val_set) / t.batch_size)
    val_loader = build_loader(
        val_set, batch_size=t.batch_size, num_workers=min(workers, val_batches), device=device, seed=seed
    )

    # ---- model, optimiser, schedule (same initial weights on every rank)
    seed_everything(seed)
    raw_model = build_model(settings.model, settings.data, gru_device=gru_device).to(device)
    seed_everything(seed, ctx.rank)
    optimizer = build_optimizer(raw_model, t)
    scheduler = build_scheduler(optimizer, t.warmup_steps, t.max_steps, t.min_lr_ratio)

    step = 0
    if resume is not None:
        ckpt = load_checkpoint(resume, map_location=device)
        check_compatible(ckpt, settings, resume)
        check_state(raw_model, ckpt["model_state"], resume)
        raw_model.load_state_dict(ckpt["model_state"], strict=True)
        if "optimizer" not in ckpt or "scheduler" not in ckpt:
            raise LvcgError(f"{resume}: holds weights only (no optimiser state); it cannot be resumed")
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step = int(ckpt["step"])
        # The schedule follows this run's settings (e.g. a longer --max-steps), not the saved ones.
        scheduler.lr_lambdas = [
            WarmupCosine(t.warmup_steps, t.max_steps, t.min_lr_ratio) for _ in optimizer.param_groups
        ]
        scheduler.base_lrs = [t.lr for _ in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["initial_lr"] = t.lr
            group["lr"] = t.lr * scheduler.lr_lambdas[0](step)
        rng = ckpt.get("rng")
        if isinstance(rng, list) and len(rng) == ctx.world_size:
            restore_rng(rng[ctx.rank])
        else:
            seed_everything(seed + step, ctx.rank)
        del ckpt

    unused = ctx.distributed and has_unused_parameters(
        raw_model, collate([train_set[0]]), t, device, precision
    )
    model = wrap_model(raw_model, ctx, compile_model=t.compile, find_unused_parameters=unused)

    # ---- bookkeeping (rank 0)
    metrics_path = run_dir / "metrics.jsonl"
    if ctx.is_main:
        if resume is not None:
            _trim_metrics(metrics_path, step)
        elif metrics_path.exists():
            metrics_path.unlink()
    log = MetricsLog(metrics_path if ctx.is_main else None)
    n_params = sum(p.numel() for p in raw_model.parameters())
    if ctx.is_main:
        console.info(
            f"{settings.model.name}: {n_params / 1e6:.2f}M parameters on {describe(device)} ({precision.name}), "
            f"{len(train_set)} training / {len(split.val[: t.val_records])} validation records, "
            f"batch {t.batch_size} x {ctx.world_size} process(es), {workers} data worker(s) per process"
            + (f", resuming at step {step}" if step else "")
        )

    def checkpoint(path: Path) -> None:
        rng = all_gather_object(capture_rng(), ctx)  # every rank takes part
        if ctx.is_main:
            save_checkpoint(
                path,
                model=raw_model,
                settings=settings,
                step=step,
                optimizer=optimizer,
                scheduler=scheduler,
                rng=rng,
            )

    first_val = last_val = last_train = None
    # every rank must take the same best.pt decisions (saving gathers from all ranks): rank 0's view
    best_val = broadcast_object(_best_val_so_far(metrics_path, step) if ctx.is_main else None, ctx)
    if step == 0 and step < t.max_steps and len(all_val):
        first_val = evaluate(raw_model, val_loader, settings, ctx, precision).get("total")
        last_val = first_val
        log.write({"step": 0, "val_loss": first_val})

    # ---- the loop
    started = time.perf_counter()
    window_start, window_steps = time.perf_counter(), 0
    sums: dict[str, torch.Tensor] = {}
    interrupted = False
    saved: Path | None = None
    extra = (
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TextColumn("lr {task.fields[lr]}"),
        TextColumn("{task.fields[speed]} samples/s"),
    )
    # A live bar on a terminal; elsewhere one plain line each time the loss is logged (log_every).
    progress = console.progress(
        extra_columns=extra, unit="steps", every_s=None, every_percent=None, on_fields=True
    )
    with StopFlag() as stop, progress as bar:
        task = bar.add_task(
            "pretrain",
            total=t.max_steps,
            completed=step,
            loss="-",
            val=f"{first_val:.4f}" if first_val is not None else "-",
            lr="-",
            speed="-",
        )
        model.train()
        while step < t.max_steps and not interrupted:
            # Every epoch has exactly steps_per_epoch batches, so the step says where we are.
            epoch, position = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch)
            sampler.set_start(position * t.batch_size)
            train_set.set_epoch(epoch)
            for batch in loader:
                batch = to_device(batch, device)
                with autocast(device, precision):
                    out = model(batch)
                    losses = raw_model.loss(batch, out, t.loss)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                grad_norm = (
                    nn.utils.clip_grad_norm_(raw_model.parameters(), t.grad_clip) if t.grad_clip > 0 else None
                )
                optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                step += 1
                window_steps += 1
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value.detach().float()
                if grad_norm is not None:
                    sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.detach().float()

                record: dict[str, Any] = {}
                shown: dict[str, str] = {}  # progress fields that changed at this step
                if step % t.log_every == 0 or step == t.max_steps:
                    names = sorted(sums)
                    means = all_reduce_mean(
                        torch.stack([sums[k] for k in names]) / window_steps, ctx
                    ).tolist()
                    elapsed = time.perf_counter() - window_start
                    speed = window_steps * t.batch_size * ctx.world_size / max(elapsed, 1e-9)
                    terms = dict(zip(names, means, strict=True))
                    last_train = terms.get("total")
                    record = {"step": step, "epoch": epoch, "lr": lr, "samples_per_s": round(speed, 2)}
                    record.update(
                        {
                            ("loss" if k == "total" else k if k == "grad_norm" else f"loss_{k}"): v
                            for k, v in terms.items()
                        }
                    )
                    shown.update(loss=f"{last_train:.4f}", lr=f"{lr:.2e}", speed=f"{speed:,.0f}")
                    sums, window_start, window_steps = {}, time.perf_counter(), 0
                    if last_train is not None and not math.isfinite(last_train):
                        raise LvcgError(f"loss became {last_train} at step {step}; try a lower --train.lr")
                if len(all_val) and (step % t.val_every == 0 or step == t.max_steps):
                    val = evaluate(raw_model, val_loader, settings, ctx, precision)
                    last_val = val.get("total")
                    if last_val is not None and (best_val is None or last_val < best_val):
                        best_val = last_val
                        checkpoint(run_dir / BEST_NAME)
                    record = {"step": step, **record, "val_loss": last_val}
                    record.update({f"val_loss_{k}": v for k, v in val.items() if k != "total"})
                    shown["val"] = f"{last_val:.4f}"
                if record:
                    record["elapsed_s"] = round(time.perf_counter() - started, 2)
                    log.write(record)
                bar.update(task, completed=step, **shown)

                if step % t.ckpt_every == 0 and step < t.max_steps:
                    checkpoint(run_dir / f"ckpt-{step}.pt")
                    if ctx.is_main:
                        _prune_checkpoints(run_dir, t.keep_checkpoints)
                if any_rank(stop.requested, ctx):
                    interrupted = True
                    saved = run_dir / f"ckpt-{step}.pt"
                    checkpoint(saved)
                    break
                if step >= t.max_steps:
                    break

    if not interrupted:
        checksums = all_gather_object(param_checksum(raw_model), ctx)
        if len(set(checksums)) > 1:
            raise LvcgError(
                f"distributed ranks diverged (parameter checksums {checksums}); please report this"
            )
        saved = run_dir / "final.pt"
        checkpoint(saved)
        log.write(
            {
                "step": step,
                "event": "final",
                "param_checksums": checksums,
                "elapsed_s": round(time.perf_counter() - started, 2),
            }
        )
    log.close()
    return TrainResult(
        run_dir=run_dir,
        step=step,
        max_steps=t.max_steps,
        checkpoint=saved,
        interrupted=interrupted,
        train_loss=last_train,
        val_loss=last_val,
        first_val_loss=first_val,
        seconds=time.perf_counter() - started,
    )


def train_worker(
    settings_json: str, run_dir: str, resume: str | None, accelerator: str
) -> TrainResult | None:
    """Entry point of each launched rank: join the process group, train, leave (module level, so
    spawned workers can import it). Only rank 0 returns a result; the other ranks stay quiet."""
    from lvcg_cli.engine.distributed import init_from_env, shutdown

    settings = Settings.model_validate_json(settings_json)
    ctx = init_from_env(accelerator, settings.engine.device)
    if not ctx.is_main:
        console.set_quiet(True)
    try:
        result = train(settings, Path(run_dir), ctx, Path(resume) if resume else None)
    except BaseException:
        shutdown(together=False)
        raise
    shutdown()
    return result if ctx.is_main else None
