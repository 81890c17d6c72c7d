"""Shared fixtures: where the open records live, and a clean environment for settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# ../shared/data beside the checkout (present for developers and CI). Tests that need it skip
# with a clear reason when it is absent, so a bare clone still runs the rest.
SHARED_DATA = Path(os.environ.get("LVCG_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"open records not found at {SHARED_DATA} (set LVCG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test sees the developer's LVCG_* settings or writes to their real cache."""
    for key in list(os.environ):
        if key.startswith("LVCG_") and key not in {"LVCG_SHARED_DATA"}:
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("lvcg_home")
    monkeypatch.setenv("LVCG_HOME", str(home))
    monkeypatch.setenv("LVCG_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("LVCG_NO_PROGRESS", "1")


@pytest.fixture
def one_torch_thread(monkeypatch):
    """One intra-op thread (also for subprocesses) in tests that train: on a shared 2-core CI
    machine, OpenMP threads mostly wait for each other (3-25 vs 30-60 samples/s under load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
