"""Several processes without a home-made launcher.

``--gpus N`` (or ``--accelerator cpu --devices N``) starts N workers through PyTorch's own
elastic launcher, in-process (``torch.distributed.launcher.api.elastic_launch``: standalone
rendezvous on localhost, no restarts). A process that is already part of a distributed job
(``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set by ``torchrun`` or a scheduler) joins it instead, so a
multi-node run is plain ``torchrun --nnodes ... -m lvcg_cli pretrain ...``.

A failed worker is reported as one line naming the rank and the root cause, not as a wall of
tracebacks from every process: each worker catches its own exception, writes a one-line summary
to a shared folder and exits; the launcher reads the earliest summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist

from lvcg_cli.engine.device import _mps_available, select_device
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import EngineSettings

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


# --------------------------------------------------------------------------------------------
# the context every rank runs in
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistContext:
    """Who this process is in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, writes metrics and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()


def env_job(environ: dict[str, str] | None = None) -> dict[str, int] | None:
    """Rank, local rank and world size when this process was started by torchrun or a scheduler."""
    environ = dict(os.environ) if environ is None else environ
    if not all(environ.get(k, "").strip() for k in ENV_KEYS):
        return None
    try:
        return {
            "rank": int(environ["RANK"]),
            "world_size": int(environ["WORLD_SIZE"]),
            "local_rank": int(environ["LOCAL_RANK"]),
        }
    except ValueError:
        raise LvcgError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None


@dataclass(frozen=True)
class LaunchPlan:
    """How a run uses processes: one process, launch N workers here, or join an existing job."""

    mode: Literal["single", "launch", "join"]
    accelerator: Literal["cpu", "cuda", "mps"]
    nprocs: int


def _accelerator(engine: EngineSettings) -> Literal["cpu", "cuda", "mps"]:
    if engine.accelerator != "auto":
        return engine.accelerator
    if engine.device != "auto":
        return engine.device.split(":")[0]  # type: ignore[return-value]
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available() and engine.devices == 1:
        return "mps"
    return "cpu"


def plan_launch(engine: EngineSettings, environ: dict[str, str] | None = None) -> LaunchPlan:
    """Decide (and validate, before anything starts) how many processes run where.

    Raises a one-line :class:`LvcgError` for more GPUs than are visible, and for several MPS
    processes (Apple GPUs have no distributed backend for DistributedDataParallel).
    """
    accelerator = _accelerator(engine)
    job = env_job(environ)
    n = engine.devices
    if job is not None:
        if accelerator == "mps" and job["world_size"] > 1:
            raise LvcgError(
                "distributed training on MPS is not supported (no NCCL/DDP on Apple GPUs); use one process"
            )
        return LaunchPlan("join", accelerator, job["world_size"])
    if accelerator == "mps" and n > 1:
        raise LvcgError(
            f"--devices {n} with MPS: DistributedDataParallel is not supported on Apple GPUs; use --devices 1"
        )
    if accelerator == "cuda":
        count = torch.cuda.device_count()
        if n > count:
            raise LvcgError(too_few_gpus(n, count, environ))
    return LaunchPlan("launch" if n > 1 else "single", accelerator, n)


def too_few_gpus(asked: int, count: int, environ: dict[str, str] | None = None) -> str:
    """The one line for ``--gpus N`` on a machine with fewer: how many there are, what to run instead."""
    environ = dict(os.environ) if environ is None else environ
    mask = environ.get("CUDA_VISIBLE_DEVICES")
    seen = f" (CUDA_VISIBLE_DEVICES={mask})" if mask is not None else ""
    if count == 0:
        build = "" if torch.version.cuda else f"; this torch ({torch.__version__}) is a CPU-only build"
        return (
            f"--gpus {asked}: no CUDA GPU is visible on this machine{seen}{build}; "
            "leave out --gpus to train on the CPU, or run on a machine with GPUs"
        )
    return (
        f"--gpus {asked}: only {count} CUDA GPU{'s' if count > 1 else ''} visible on this machine{seen}; "
        f"run with --gpus {count}" + (" (or leave out --gpus)" if count == 1 else "")
    )


def rank_device(accelerator: str, local_rank: int, device_spec: str = "auto") -> torch.device:
    """The device of one rank: ``cuda:<local_rank>`` under DDP, else the one asked for."""
    if accelerator == "cuda":
        if (
            device_spec.startswith("cuda:")
            and local_rank == 0
            and int(os.environ.get("WORLD_SIZE", "1")) == 1
        ):
            return select_device(device_spec)
        device = select_device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
        return device
    if accelerator == "cpu":
        return torch.device("cpu")
    return select_device(device_spec if device_spec != "auto" else accelerator)


def init_from_env(accelerator: str, device_spec: str = "auto") -> DistContext:
    """Join the process group described by the environment (torchrun or our own launch)."""
    job = env_job()
    if job is None or job["world_size"] == 1:
        local = job["local_rank"] if job else 0
        return DistContext(0, local, 1, rank_device(accelerator, local, device_spec))
    device = rank_device(accelerator, job["local_rank"], device_spec)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    if device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", job["world_size"]))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(local_world, 1)))
    return DistContext(job["rank"], job["local_rank"], job["world_size"], device)


def shutdown(*, together: bool = True) -> None:
    """Leave the process group (if any); after a success, all ranks together.

    ``together``: a barrier first. A rank that tears its gloo connections down while another is
    still finishing its last collective can make that rank's transport threads abort the process
    ("terminate called without an active exception", exit -6) after training succeeded. After a
    failure there is no barrier: the other ranks may never reach it, and waiting would hang.
    """
    if dist.is_available() and dist.is_initialized():
        try:
            if together:
                dist.barrier()
        finally:
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------------
# small collectives that are no-ops in a single process
# --------------------------------------------------------------------------------------------
def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a tensor over ranks (the tensor itself in a single process)."""
    if not ctx.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / ctx.world_size


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when it is true on any (used to stop all ranks at the same step)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


# --------------------------------------------------------------------------------------------
# launching N local workers with elastic_launch
# --------------------------------------------------------------------------------------------
def _failure_path(folder: str, rank: int) -> Path:
    return Path(folder) / f"rank-{rank}.json"


def _worker_entry(fn: Callable[..., Any], args: tuple, failure_dir: str) -> Any:
    """Runs in each worker: call ``fn``, and on failure leave a one-line summary and exit."""
    rank = int(os.environ.get("RANK", "0"))
    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - every failure must be summarised, then exit
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return None
        if isinstance(exc, LvcgError):
            kind, message, code = "error", _original_message(exc), 2
        elif isinstance(exc, KeyboardInterrupt):
            kind, message, code = "interrupted", "interrupted", 130
        else:
            kind, message, code = "bug", f"{type(exc).__name__}: {_original_message(exc)}", 1
        record = {"rank": rank, "time": time.time(), "kind": kind, "message": message}
        with contextlib.suppress(OSError):
            _failure_path(failure_dir, rank).write_text(json.dumps(record))
        if os.environ.get("LVCG_DEBUG", "") not in {"", "0", "false"}:
            traceback.print_exc()
        sys.exit(code)


def _original_message(exc: BaseException) -> str:
    """The first line of an error, or for one re-raised from a DataLoader worker ("Caught X in
    DataLoader worker process 0. Original Traceback ...") the original error's own line."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        last = lines[-1].strip()
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        for candidate in (prefix, f"{type(exc).__name__}: "):
            last = last.removeprefix(candidate)
        return last
    return lines[0]


def _failure_records(failure_dir: str) -> list[dict[str, Any]]:
    records = []
    for path in Path(failure_dir).glob("rank-*.json"):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text()))
    return records


def _root_cause(failure_dir: str, error: Exception) -> str:
    """One line: the earliest failure a worker reported, else what the launcher saw."""
    records = _failure_records(failure_dir)
    if records:
        # A real error (bad data, bad settings) explains the others, which die of a closed connection.
        records.sort(key=lambda r: (r["kind"] not in {"error", "bug"}, r["kind"] != "error", r["time"]))
        first = records[0]
        others = len(getattr(error, "failures", {}) or records) - 1
        tail = f" ({others} other rank(s) stopped)" if others > 0 else ""
        return f"rank {first['rank']} failed: {first['message']}{tail}"
    get_first = getattr(error, "get_first_failure", None)
    if get_first is not None:
        rank, failure = get_first()
        if failure.exitcode < 0:
            return f"rank {rank} was killed by signal {failure.signal_name()} (out of memory?)"
        return f"rank {rank} exited with code {failure.exitcode}"
    return f"distributed launch failed: {type(error).__name__}: {error}"


@contextlib.contextmanager
def _launcher_quiet() -> Iterator[dict[str, bool]]:
    """Silence the elastic agent's own logging, and let Ctrl-C reach the workers only.

    The workers share our process group, so they receive the terminal's SIGINT themselves, save a
    checkpoint and return; the launcher just notes it and waits for them.
    """
    state = {"interrupted": False}
    previous = None
    in_main_thread = True

    def _note(signum: int, frame: Any) -> None:
        if state["interrupted"]:
            raise KeyboardInterrupt
        state["interrupted"] = True

    try:
        previous = signal.signal(signal.SIGINT, _note)
    except ValueError:  # not the main thread
        in_main_thread = False
    logging.disable(logging.CRITICAL)
    try:
        yield state
    finally:
        logging.disable(logging.NOTSET)
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGINT, previous)


def launch(fn: Callable[..., Any], args: tuple, nprocs: int) -> dict[int, Any]:
    """Run ``fn(*args)`` in ``nprocs`` local worker processes; return each rank's return value.

    ``fn`` must be importable (a module-level function) because workers are spawned. Each worker
    sees ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` and calls
    :func:`init_from_env` itself. A failure becomes one :class:`LvcgError` line.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    failure_dir = tempfile.mkdtemp(prefix="lvcg-launch-")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=f"lvcg-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        signals_to_handle="SIGTERM,SIGHUP,SIGQUIT",
    )
    try:
        with _launcher_quiet() as state:
            try:
                return elastic_launch(config, _worker_entry)(fn, args, failure_dir)
            except ChildFailedError as exc:
                kinds = {r.get("kind") for r in _failure_records(failure_dir)}
                if state["interrupted"] and kinds <= {"interrupted"}:
                    raise KeyboardInterrupt from None  # Ctrl-C before training started: nothing to save
                raise LvcgError(_root_cause(failure_dir, exc)) from None
            except LvcgError:
                raise
            except Exception as exc:  # rendezvous problems and the like
                raise LvcgError(_root_cause(failure_dir, exc)) from None
    finally:
        shutil.rmtree(failure_dir, ignore_errors=True)
