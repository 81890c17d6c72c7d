"""One place that decides where tensors live and in which precision.

``auto`` prefers CUDA, then Apple's MPS, then the CPU. MPS has known pitfalls that we guard
against here rather than in every caller: no float64 tensors, no NCCL/DDP, and GRU kernels that
have been reported to return NaNs (pytorch/pytorch issues on ``nn.GRU`` with MPS), so the
dynamics GRU runs on the CPU when the device is MPS (see :func:`gru_device`).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from lvcg_cli.errors import LvcgError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(spec: str = "auto") -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:N | mps`` into a usable :class:`torch.device`.

    Raises :class:`LvcgError` (one line, exit 2) when the requested device is not there,
    instead of failing later inside a kernel.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise LvcgError("--device mps: MPS is not available on this machine (try --device auto)")
        return torch.device("mps")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LvcgError(
                f"--device {spec}: CUDA is not available on this machine (try --device auto or cpu)"
            )
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise LvcgError(
                f"--device {spec}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})"
            )
        return torch.device("cuda", index)
    raise LvcgError(f"--device: must be auto, cpu, cuda, cuda:N or mps (got {spec!r})")


@dataclass(frozen=True)
class Precision:
    """The autocast policy chosen for a device."""

    dtype: torch.dtype | None  # None: full fp32, no autocast
    name: str

    @property
    def enabled(self) -> bool:
        return self.dtype is not None


def select_precision(device: torch.device, requested: str = "auto") -> Precision:
    """bf16 autocast on CUDA when the GPU supports it; fp32 elsewhere unless asked explicitly."""
    if requested == "fp32":
        return Precision(None, "fp32")
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested in {"auto", "bf16"}:
            if bf16_ok:
                return Precision(torch.bfloat16, "bf16")
            if requested == "bf16":
                raise LvcgError(
                    "--engine.precision bf16: this GPU does not support bfloat16 (use fp16 or fp32)"
                )
            return Precision(None, "fp32")
        return Precision(torch.float16, "fp16")
    if requested == "auto":
        return Precision(None, "fp32")
    if device.type == "mps":
        raise LvcgError(
            f"--engine.precision {requested}: mixed precision is not supported on MPS here (use fp32)"
        )
    if requested == "bf16":
        return Precision(torch.bfloat16, "bf16")
    raise LvcgError("--engine.precision fp16: fp16 autocast needs CUDA (use bf16 or fp32 on the CPU)")


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Autocast for the forward pass (a no-op for fp32)."""
    if not precision.enabled:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=precision.dtype):
        yield


def gru_device(device: torch.device) -> torch.device:
    """Where the dynamics GRU should run: the CPU instead of MPS (NaN reports on MPS GRUs)."""
    return torch.device("cpu") if device.type == "mps" else device


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed Python, numpy and torch; each distributed rank gets ``seed + rank``."""
    effective = int(seed) + int(rank)
    random.seed(effective)
    np.random.seed(effective % (2**32))  # noqa: NPY002 - seeds the legacy global RNG that third-party code uses
    torch.manual_seed(effective)
    os.environ.setdefault("PYTHONHASHSEED", str(effective))
    return effective


def describe(device: torch.device) -> str:
    """Human-readable device name for logs."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def set_inference_threads(device: torch.device, busy_threads: int) -> int:
    """Give torch's CPU kernels the cores that ``busy_threads`` reader threads leave free.

    Serving commands read and preprocess records on a thread pool while the model runs; letting
    both claim every core oversubscribes the CPU (measured: 2-core machine, lvcg-tiny embed went
    from ~2.7 ms to ~25 ms per record with 2 torch threads beside 2 readers). A no-op off the CPU.
    """
    if device.type != "cpu":
        return torch.get_num_threads()
    threads = max(1, available_cpus() - max(0, int(busy_threads)))
    torch.set_num_threads(threads)
    return threads
