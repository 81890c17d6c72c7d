"""``lvcg pretrain``: self-supervised pretraining (masked-lead reconstruction through the latent VCG).

This module only turns options into settings, picks the run folder and the process layout, and
prints the outcome; the loop lives in :mod:`lvcg_cli.engine.trainer`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import typer

from lvcg_cli import console, runs
from lvcg_cli.atomic import write_text_atomic
from lvcg_cli.commands._common import (
    OVERRIDABLE,
    ConfigOption,
    DeviceOption,
    JsonOption,
    PresetOption,
    QuietOption,
    settings_from,
    unset_option,
)
from lvcg_cli.errors import LvcgError
from lvcg_cli.locks import exclusive
from lvcg_cli.settings import Settings

DEFAULT_PRESET = "lvcg-tiny"


def _run_dir(settings: Settings) -> Path:
    if settings.run.out is not None:
        return Path(settings.run.out)
    return Path(settings.run.runs_dir) / str(settings.run.run_id)


def _resume_target(settings: Settings, resume_path: str | None) -> tuple[Path, Path]:
    """(run folder, checkpoint) to continue from ``--resume [PATH]``."""
    from lvcg_cli.engine.trainer import latest_checkpoint

    if resume_path is not None:
        path = Path(resume_path)
        if path.is_dir():
            ckpt = latest_checkpoint(path)
            if ckpt is None:
                raise LvcgError(f"{path}: no checkpoint (ckpt-<step>.pt or final.pt) to resume from")
            run_dir = path
        elif path.is_file():
            ckpt, run_dir = path, path.parent
        else:
            raise LvcgError(f"{path}: no such checkpoint or run folder (--resume)")
        if settings.run.out is not None or settings.run.run_id is not None:
            run_dir = _run_dir(settings)
        return run_dir, ckpt
    if settings.run.out is None and settings.run.run_id is None:
        raise LvcgError("--resume: say which run, with --run-id ID, --out DIR or --resume PATH")
    run_dir = _run_dir(settings)
    if not run_dir.is_dir():
        raise LvcgError(f"{run_dir}: no such run folder to resume")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise LvcgError(f"{run_dir}: no checkpoint (ckpt-<step>.pt or final.pt) to resume from")
    return run_dir, ckpt


def _sample_record() -> str:
    """A bundled open record to try the next commands on (a placeholder if it is not installed)."""
    from importlib import resources

    path = Path(str(resources.files("lvcg_cli") / "assets" / "records" / "ptbxl" / "00001_hr.hea"))
    return str(path) if path.is_file() else "RECORD.hea"


def _next_steps(ckpt: Path) -> str:
    record = _sample_record()
    return (
        "next:\n"
        f"  lvcg embed {record} --checkpoint {ckpt} -o emb.npy\n"
        f"  lvcg reconstruct {record} --visible I,II,V2 --checkpoint {ckpt} -o full.npy --plot full.png\n"
        f"  lvcg probe --checkpoint {ckpt}"
    )


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _say(text: str) -> None:
    """An info line on stderr that is never re-wrapped (paths must stay copy-pasteable)."""
    if not console.is_quiet():
        console.err_console.print(text, soft_wrap=True, markup=False, highlight=False)


def _result_json(result: Any) -> dict[str, Any]:
    """What ``--json`` prints: the checkpoint, the run folder and the losses."""
    return {
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "run_dir": str(result.run_dir),
        "step": result.step,
        "max_steps": result.max_steps,
        "interrupted": result.interrupted,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "first_val_loss": result.first_val_loss,
        "seconds": round(result.seconds, 3),
    }


def _report(result: Any, as_json: bool = False) -> None:
    if result is None:
        raise LvcgError("training finished without a result from rank 0")
    if as_json:
        typer.echo(json.dumps(_result_json(result), indent=2))
    if result.interrupted:
        where = f"checkpoint saved to {result.checkpoint}" if result.checkpoint else "no checkpoint saved"
        resume = f"; continue with: lvcg pretrain --resume {result.checkpoint}" if result.checkpoint else ""
        console.warn(f"interrupted at step {result.step}/{result.max_steps}; {where}{resume}")
        raise typer.Exit(130)
    losses = []
    if result.train_loss is not None:
        losses.append(f"train loss {result.train_loss:.4f}")
    if result.val_loss is not None:
        start = f" (step 0: {result.first_val_loss:.4f})" if result.first_val_loss is not None else ""
        losses.append(f"validation loss {result.val_loss:.4f}{start}")
    _say(f"done: {result.step} steps in {_format_duration(result.seconds)}; " + ", ".join(losses))
    _say(f"checkpoint: {result.checkpoint}")
    _say(_next_steps(result.checkpoint))
    if not as_json:
        typer.echo(str(result.checkpoint))


def run_pretrain(settings: Settings, *, resume: bool = False, resume_path: str | None = None) -> Any:
    """Pick the run folder and process layout, then train; returns rank 0's TrainResult."""
    from lvcg_cli.datasets.torch_data import open_sources
    from lvcg_cli.engine import distributed
    from lvcg_cli.engine.trainer import train, train_worker

    plan = distributed.plan_launch(settings.engine)  # fails at once for impossible device requests

    ctx = None
    if plan.mode == "join":
        ctx = distributed.init_from_env(plan.accelerator, settings.engine.device)
        if not ctx.is_main:
            console.set_quiet(True)

    held = contextlib.ExitStack()  # the run folder's lock, held until training ends

    def prepare() -> tuple[Path, Path | None, bool]:
        """Claim and lock the run folder (rank 0), write config.yaml, check the data.

        Returns (folder, checkpoint to resume from, whether this run created the folder).
        """
        if resume or resume_path is not None:
            run_dir, ckpt = _resume_target(settings, resume_path)
            created = not run_dir.exists()
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / runs.FAILED_FILE).unlink(missing_ok=True)  # this attempt may well succeed
        elif settings.run.out is None and settings.run.run_id is None:
            run_dir, ckpt, created = runs.claim_new(settings.run.runs_dir), None, True
            settings.run.run_id = run_dir.name
        else:
            run_dir, ckpt = _run_dir(settings), None
            run_dir, created = runs.claim_named(
                run_dir, "add --resume to continue it, or choose another --run-id / --out"
            )
        held.enter_context(
            exclusive(run_dir, what="pretrain")
        )  # another writer's folder: refuse, touch nothing
        try:
            write_text_atomic(run_dir / "config.yaml", settings.to_yaml())
            open_sources(settings)  # builds the default data once and fails early on missing/corrupt data
        except BaseException as exc:
            runs.abandon(run_dir, runs.failure_reason(exc), created=created)
            raise
        return run_dir, ckpt, created

    with held:
        return _train_prepared(settings, plan, ctx, prepare, train, train_worker)


def _train_prepared(settings: Settings, plan: Any, ctx: Any, prepare, train, train_worker) -> Any:
    """Prepare the run folder (locking it) and train; the caller holds the lock until this returns."""
    from lvcg_cli.engine import distributed

    if ctx is None:
        run_dir, ckpt, created = prepare()
    else:  # rank 0 prepares, the others wait and share its outcome
        outcome: Any = None
        if ctx.is_main:
            try:
                outcome = prepare()
            except LvcgError as exc:
                outcome = str(exc)
        outcome = distributed.broadcast_object(outcome, ctx)
        if isinstance(outcome, str):
            raise LvcgError(outcome)
        run_dir, ckpt, created = outcome
        if settings.run.run_id is None and settings.run.out is None:
            settings.run.run_id = run_dir.name  # the name rank 0 claimed

    try:
        if plan.mode == "launch":
            console.info(f"launching {plan.nprocs} {plan.accelerator} processes (torch elastic, standalone)")
            results = distributed.launch(
                train_worker,
                (settings.model_dump_json(), str(run_dir), str(ckpt) if ckpt else None, plan.accelerator),
                plan.nprocs,
            )
            return results.get(0)
        if ctx is None:
            ctx = distributed.DistContext(
                device=distributed.rank_device(plan.accelerator, 0, settings.engine.device)
            )
        try:
            result = train(settings, run_dir, ctx, ckpt)
        except BaseException:
            if plan.mode == "join":
                distributed.shutdown(together=False)
            raise
        if plan.mode == "join":
            distributed.shutdown()
        return result
    except BaseException as exc:
        if ctx is None or ctx.is_main:
            runs.abandon(run_dir, runs.failure_reason(exc), created=created)
        raise


READS = ("data", "model", "train", "engine", "paths", "run")
"""Settings sections ``lvcg pretrain`` reads."""


def pretrain(
    ctx: typer.Context,
    config: list[Path] = ConfigOption,
    preset: str = PresetOption,
    data: list[str] = unset_option(
        "--data",
        help="Prepared data set name or cache folder (repeat for several), or an original-LVCG "
        "manifest .jsonl. Default: the built-in data.",
    ),
    gpus: int = unset_option("--gpus", min=1, help="Train on N GPUs (DDP): --accelerator cuda --devices N."),
    devices: int = unset_option("--devices", min=1, help="Processes, one per device."),
    accelerator: str = unset_option("--accelerator", help="cpu | cuda | mps (for --devices)."),
    max_steps: int = unset_option("--max-steps", min=1, help="Optimiser steps (train.max_steps)."),
    run_id: str = unset_option(
        "--run-id",
        help="Run folder name under runs/ (default: start time and a random suffix, e.g. 20250131-140207-3fa9).",
    ),
    out: Path = unset_option(
        "--out", "-o", help="Run folder anywhere (instead of runs/RUN_ID; not with --run-id)."
    ),
    resume: str = unset_option(
        "--resume",
        metavar="[PATH]",
        help="Continue a run: the one given by --run-id/--out, or --resume PATH (run folder or checkpoint).",
    ),
    device: str = DeviceOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Pretrain LVCG on the built-in data (default) or prepared data sets.

    With no arguments: pretrains lvcg-tiny on the built-in data (simulator + bundled open
    records) on the best device here, in a few minutes on a laptop CPU. The run folder
    (runs/RUN_ID/) holds config.yaml, metrics.jsonl, ckpt-STEP.pt and final.pt; the path of
    the final checkpoint is printed on stdout. Ctrl-C saves a checkpoint and stops.

    Examples:

        lvcg pretrain

        lvcg pretrain --preset lvcg-base --data mimic --gpus 4 --run-id base-mimic

        lvcg pretrain --resume --run-id base-mimic

        lvcg pretrain --data.meta_root mimic_manifest.jsonl --train.lr 3e-4

        torchrun --nnodes 2 --nproc-per-node 8 ... -m lvcg_cli pretrain --preset lvcg-base --data mimic
    """
    console.set_quiet(quiet)
    resuming = resume is not None  # "" (--resume alone): the run given by --run-id / --out
    resume_path = resume or None

    explicit: dict[str, Any] = {
        "train.max_steps": max_steps,
        "run.run_id": run_id,
        "run.out": str(out) if out is not None else None,
        "engine.device": device,
        "engine.devices": devices,
        "engine.accelerator": accelerator,
    }
    if gpus is not None:
        if accelerator not in (None, "cuda"):
            raise LvcgError(f"--gpus {gpus} means --accelerator cuda (got --accelerator {accelerator})")
        if devices is not None and devices != gpus:
            raise LvcgError(f"--gpus {gpus} and --devices {devices} disagree; give one of them")
        explicit.update({"engine.accelerator": "cuda", "engine.devices": gpus})
    if data:
        manifests = [d for d in data if d.endswith(".jsonl")]
        names = [d for d in data if not d.endswith(".jsonl")]
        if len(manifests) > 1 or (manifests and names):
            raise LvcgError("--data: give either one manifest .jsonl or prepared data sets, not both")
        if manifests:
            explicit["data.meta_root"] = manifests[0]
        else:
            explicit["data.datasets"] = names

    # Where this run writes is what this command line (with env and --config) says, never what
    # a resumed checkpoint recorded: the folder may have moved, or the run continue elsewhere.
    typed = settings_from(ctx, reads=READS, preset=preset, config=config, explicit=explicit)
    runs.check_one_location(typed.run.run_id, typed.run.out)
    base = None
    if resuming:
        # A resumed run keeps its own settings; options given now are applied on top of them.
        _, ckpt = _resume_target(typed, resume_path)
        from lvcg_cli.engine.checkpoint import checkpoint_settings, load_checkpoint

        base = checkpoint_settings(load_checkpoint(ckpt), ckpt).model_dump(mode="json")
    settings = settings_from(
        ctx,
        reads=READS,
        preset=preset if (preset or resuming) else DEFAULT_PRESET,
        config=config,
        explicit=explicit,
        base=base,
    )
    settings.run = typed.run.model_copy()

    result = run_pretrain(settings, resume=resuming, resume_path=resume_path)
    from lvcg_cli.engine.distributed import env_job

    job = env_job()
    if job is None or job["rank"] == 0:  # in a torchrun job, rank 0 alone reports
        _report(result, as_json)


def register(app: typer.Typer) -> None:
    app.command("pretrain", context_settings=OVERRIDABLE)(pretrain)
