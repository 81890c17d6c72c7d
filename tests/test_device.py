"""Device and precision selection with mocked hardware availability."""

from __future__ import annotations

import pytest
import torch

from lvcg_cli.engine import device as dev
from lvcg_cli.errors import LvcgError


@pytest.fixture
def hardware(monkeypatch):
    """Pretend a machine has the given CUDA device count / MPS availability."""

    def set_hardware(cuda: int = 0, mps: bool = False, bf16: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
        monkeypatch.setattr(dev, "_mps_available", lambda: mps)

    return set_hardware


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(0, False, "cpu"), (0, True, "mps"), (1, False, "cuda:0"), (2, True, "cuda:0")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(hardware, cuda, mps, expected):
    hardware(cuda=cuda, mps=mps)
    assert str(dev.select_device("auto")) == expected


def test_explicit_devices(hardware):
    hardware(cuda=2, mps=True)
    assert dev.select_device("cpu") == torch.device("cpu")
    assert dev.select_device("cuda") == torch.device("cuda", 0)
    assert dev.select_device("cuda:1") == torch.device("cuda", 1)
    assert dev.select_device("MPS") == torch.device("mps")


@pytest.mark.parametrize(
    ("spec", "cuda", "mps", "message"),
    [
        ("cuda", 0, False, "CUDA is not available"),
        ("cuda:2", 2, False, r"only 2 CUDA device\(s\) visible"),
        ("mps", 0, False, "MPS is not available"),
        ("tpu", 0, False, "must be auto, cpu, cuda"),
    ],
)
def test_unavailable_devices_fail_with_one_line(hardware, spec, cuda, mps, message):
    hardware(cuda=cuda, mps=mps)
    with pytest.raises(LvcgError, match=message) as info:
        dev.select_device(spec)
    assert "\n" not in str(info.value)


def test_precision_policy(hardware):
    hardware(cuda=1, bf16=True)
    cuda = torch.device("cuda", 0)
    assert dev.select_precision(cuda, "auto").dtype is torch.bfloat16
    assert dev.select_precision(cuda, "fp16").dtype is torch.float16
    assert not dev.select_precision(cuda, "fp32").enabled
    hardware(cuda=1, bf16=False)
    assert not dev.select_precision(cuda, "auto").enabled
    with pytest.raises(LvcgError, match="does not support bfloat16"):
        dev.select_precision(cuda, "bf16")
    cpu = torch.device("cpu")
    assert not dev.select_precision(cpu, "auto").enabled
    assert dev.select_precision(cpu, "bf16").dtype is torch.bfloat16
    with pytest.raises(LvcgError, match="fp16 autocast needs CUDA"):
        dev.select_precision(cpu, "fp16")
    with pytest.raises(LvcgError, match="not supported on MPS"):
        dev.select_precision(torch.device("mps"), "bf16")


def test_mps_guards():
    mps = torch.device("mps")
    assert dev.gru_device(mps) == torch.device("cpu")
    cpu = torch.device("cpu")
    assert dev.gru_device(cpu) == cpu


def test_autocast_is_a_noop_for_fp32():
    cpu = torch.device("cpu")
    with dev.autocast(cpu, dev.select_precision(cpu, "fp32")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype is torch.float32
    with dev.autocast(cpu, dev.select_precision(cpu, "bf16")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype is torch.bfloat16


def test_seeding_is_reproducible_and_per_rank():
    assert dev.seed_everything(5, rank=0) == 5
    a = torch.rand(3)
    dev.seed_everything(5, rank=0)
    assert torch.equal(a, torch.rand(3))
    dev.seed_everything(5, rank=1)
    assert not torch.equal(a, torch.rand(3))


def test_inference_threads_leave_cores_to_readers(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(dev, "available_cpus", lambda: 8)
    try:
        assert dev.set_inference_threads(torch.device("cpu"), busy_threads=3) == 5
        assert torch.get_num_threads() == 5
        assert dev.set_inference_threads(torch.device("cpu"), busy_threads=20) == 1
    finally:
        torch.set_num_threads(before)
