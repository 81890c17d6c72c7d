"""Locked, verified outputs: concurrent writers, kill -9 with pool workers, full and read-only disks.

The reference for "correct" is always an uninterrupted in-process run into another folder:
the interrupted, raced or failed run must end with the same signals and the same manifest.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from lvcg_cli import atomic, locks
from lvcg_cli.datasets import prepare as prepare_mod
from lvcg_cli.datasets.cache import PackedCache
from lvcg_cli.datasets.prepare import prepare_dataset
from lvcg_cli.errors import LvcgError, OutputError
from lvcg_cli.locks import LOCK_NAME, LockedError
from lvcg_cli.settings import resolve_settings

RELEASES = FIXTURES / "releases"
RECORD = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records" / "ptbxl" / "00001_hr.hea"
LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _settings(tmp_path, **overrides):
    return resolve_settings(
        overrides={
            "paths.cache_dir": str(tmp_path / "cache"),
            "prepare.chunk_size": 2,
            "prepare.ptbxl_rate": 100,
            **overrides,
        },
        environ={},
    )


def _same_cache(a: Path, b: Path) -> None:
    one, two = PackedCache.open(a), PackedCache.open(b)
    np.testing.assert_array_equal(np.asarray(one.signals), np.asarray(two.signals))
    assert one.manifest.equals(two.manifest)
    assert one.meta["n"] == two.meta["n"] and one.meta["complete"] is two.meta["complete"] is True


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.rglob("*") if ".tmp" in p.name] == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    return prepare_dataset("ptbxl", _settings(tmp), root=RELEASES / "ptbxl", out=tmp / "ref", workers=1).path


# ---------------------------------------------------------------------------------------------
# the lock itself
# ---------------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "out"
    with locks.exclusive(folder, what="prepare-data") as path:
        assert path == folder / LOCK_NAME
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert locks.holder_of(folder)["pid"] == os.getpid()
        with pytest.raises(LockedError) as info, locks.exclusive(folder, what="prepare-data"):
            pass
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(
            f"{folder}: another prepare-data is writing this folder (pid {os.getpid()} on "
        )
        assert message.endswith("wait for it to finish or choose another output folder")
        again = pickle.loads(pickle.dumps(info.value))
        assert str(again) == message
    assert not (folder / LOCK_NAME).exists() and locks.holder_of(folder) is None
    with locks.exclusive(folder, what="prepare-data"):  # free again
        pass


def test_waiting_writer_gets_the_lock_when_the_holder_leaves(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "POLL_S", 0.02)
    folder = tmp_path / "out"
    order = []
    first = locks.exclusive(folder, what="x")
    first.__enter__()

    def leave():
        time.sleep(0.3)
        order.append("released")
        first.__exit__(None, None, None)

    thread = threading.Thread(target=leave)
    thread.start()
    with locks.exclusive(folder, what="x", wait=True):
        order.append("acquired")
    thread.join()
    assert order == ["released", "acquired"]


@pytest.mark.slow
@LINUX_PROC
def test_a_dead_holder_whose_child_still_holds_the_lock_is_named_as_gone(tmp_path):
    """What a rerun would meet after kill -9 if a worker survived: the lock is still held, by the child."""
    folder = tmp_path / "out"
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from lvcg_cli import locks
held = locks.exclusive({str(folder)!r}, what="prepare-data")
held.__enter__()
child = os.fork()
if child == 0:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    time.sleep(60)   # the child keeps the inherited lock
    os._exit(0)
print(child, flush=True)
os._exit(0)          # the parent leaves without releasing
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child = int(proc.stdout)
    try:
        with (
            pytest.raises(LockedError, match=r"\(gone; a process it started still holds the lock\)"),
            locks.exclusive(folder, what="prepare-data"),
        ):
            pass
    finally:
        os.kill(child, signal.SIGKILL)
    assert _gone_within(child, 10.0)
    with locks.exclusive(folder, what="prepare-data"):  # the kernel released it with the child
        pass


# ---------------------------------------------------------------------------------------------
# prepare-data under faults (in-process)
# ---------------------------------------------------------------------------------------------
def test_prepare_into_a_locked_folder_is_refused_and_leaves_it_alone(tmp_path):
    out = tmp_path / "out"
    with locks.exclusive(out, what="prepare-data"):
        with pytest.raises(LockedError, match=rf"pid {os.getpid()} on "):
            prepare_dataset("ptbxl", _settings(tmp_path), root=RELEASES / "ptbxl", out=out, workers=1)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_full_disk_stops_in_one_line_keeps_finished_chunks_and_resumes(tmp_path, monkeypatch, reference):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    real_save, calls = np.save, []

    def full_after_two(file, array, *args, **kwargs):
        calls.append(file)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", full_after_two)
    with pytest.raises(OutputError) as info:
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    monkeypatch.undo()
    assert str(info.value) == f"{out}/.partial/chunks/000002.npy: cannot write: no space left on device"
    assert not (out / "meta.json").exists() and not (out / LOCK_NAME).exists()
    _no_temporaries(out)
    again = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    assert again.chunks_reused == 2 and again.chunks_run == [2]
    _same_cache(out, reference)


def test_read_only_output_is_one_line_and_nothing_half_written(tmp_path, monkeypatch, reference):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    real_replace = os.replace

    def read_only_at_manifest(src, dst):
        if str(dst).endswith("manifest.csv"):
            raise OSError(errno.EROFS, "Read-only file system", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", read_only_at_manifest)
    with pytest.raises(OutputError, match=r"manifest.csv: cannot write: read-only file system$"):
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    monkeypatch.undo()
    assert not (out / "meta.json").exists() and not (out / "manifest.csv").exists()
    _no_temporaries(out)
    prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    _same_cache(out, reference)


def test_a_chunk_changed_behind_its_marker_is_refused_and_redone(tmp_path, reference):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    seen = []

    def stop_after_all_three(index, marker):
        seen.append(index)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(
            "ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1, on_chunk=stop_after_all_three
        )
    chunk = out / ".partial" / "chunks" / "000001.npy"
    np.save(chunk, np.zeros_like(np.load(chunk)))  # another writer's zeros, as in the campaign
    with pytest.raises(LvcgError, match=r"000001.npy: does not match its marker"):
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    assert not (out / "meta.json").exists()
    again = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    assert again.chunks_run == [1]
    _same_cache(out, reference)


def test_a_row_lost_in_assembly_is_caught_before_the_cache_is_marked_complete(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    real_copy = prepare_mod._copy_chunks

    def lose_a_write(partial_signals, *args, **kwargs):
        real_copy(partial_signals, *args, **kwargs)
        final = out / "signals.npy"
        rows = np.load(final, mmap_mode="r+")
        rows[3] = 0  # a chunk's last row never reached the disk
        rows.flush()
        del rows

    monkeypatch.setattr(prepare_mod, "_copy_chunks", lose_a_write)
    with pytest.raises(LvcgError) as info:
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    assert str(info.value) == (
        f"{out}: not marked complete, verification failed: row 3 (chunk 1) does not hold what was "
        "prepared; prepare it again with --force"
    )
    assert not (out / "meta.json").exists()
    with pytest.raises(LvcgError, match="not finished|not a prepared"):
        PackedCache.open(out)


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path, reference):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    chunks = out / ".partial" / "chunks"
    chunks.mkdir(parents=True)
    (chunks / ".000000.abcd.tmp.npy").write_bytes(b"half")
    (out / ".manifest.efgh.tmp.csv").write_bytes(b"half")
    prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=out, workers=1)
    _no_temporaries(out)
    _same_cache(out, reference)


@pytest.mark.slow
@LINUX_PROC
def test_workers_die_with_their_parent(tmp_path):
    """die_with_parent in a forked child: SIGKILL of the parent takes the child along."""
    script = """
import os, sys, time
from lvcg_cli.datasets.prepare import die_with_parent
parent = os.getpid()
child = os.fork()
if child == 0:
    die_with_parent(parent)
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    time.sleep(0.5)  # let the child arm its signal
    assert _running(child)
    proc.kill()
    proc.wait(timeout=30)
    assert _gone_within(child, 10.0)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# prepare-data through the CLI: two at once, and kill -9 with workers
# ---------------------------------------------------------------------------------------------
def _many_records(folder: Path, n: int) -> Path:
    """``n`` copies of a bundled PTB-XL record (symlinks, one folder each: ids stay unique)."""
    for i in range(n):
        sub = folder / f"r{i:04d}"
        sub.mkdir(parents=True)
        for suffix in (".hea", ".dat"):
            os.symlink(RECORD.with_suffix(suffix), sub / f"00001_hr{suffix}")
    return folder


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lvcg_cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "LVCG_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_concurrent_prepare_runs_give_the_uninterrupted_result(tmp_path):
    root = _many_records(tmp_path / "records", 120)
    out = tmp_path / "out"
    args = _cli("prepare-data", "folder", "--root", str(root), "--out", str(out), "--workers", "1", "-q")
    runs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, stdout, stderr in results:
        if code == 2:  # refused at once, naming the running one
            assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
            assert stderr.startswith(f"lvcg: error: {out}: another prepare-data is writing this folder (pid ")
        else:
            assert stdout.strip() == str(out)
    settings = resolve_settings(overrides={"paths.cache_dir": str(tmp_path / "c")}, environ={})
    fresh = prepare_dataset("folder", settings, root=root, out=tmp_path / "fresh", workers=1)
    _same_cache(out, fresh.path)
    assert len(PackedCache.open(out)) == 120


@pytest.mark.slow
@LINUX_PROC
def test_kill_9_with_workers_leaves_no_worker_and_a_rerun_completes(tmp_path):
    root = _many_records(tmp_path / "records", 400)
    out = tmp_path / "out"
    args = _cli(
        "prepare-data",
        "folder",
        "--root",
        str(root),
        "--out",
        str(out),
        "--workers",
        "2",
        "--prepare.chunk_size",
        "4",
        "-q",
    )
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if len(workers) >= 2 and any((out / ".partial" / "chunks").glob("*.json")):
            break
        time.sleep(0.05)
    assert proc.poll() is None and len(workers) >= 2, "the run ended before workers were seen"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert all(_gone_within(pid, 10.0) for pid in workers), "a pool worker outlived kill -9 of its parent"
    assert not (out / "meta.json").exists()
    rerun = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    settings = resolve_settings(overrides={"paths.cache_dir": str(tmp_path / "c")}, environ={})
    fresh = prepare_dataset("folder", settings, root=root, out=tmp_path / "fresh", workers=1)
    _same_cache(out, fresh.path)
    _no_temporaries(out)
    assert not (out / ".partial").exists() and not (out / LOCK_NAME).exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in {"Z", "X"}:
                found.append(int(entry))
    return found


# ---------------------------------------------------------------------------------------------
# run folders
# ---------------------------------------------------------------------------------------------
def test_pretrain_into_a_run_folder_being_written_is_refused(tmp_path):
    from lvcg_cli.commands.pretrain import run_pretrain

    run_dir = tmp_path / "runs" / "busy"
    settings = resolve_settings(
        preset="lvcg-tiny", overrides={"run.out": str(run_dir), "engine.device": "cpu"}, environ={}
    )
    with locks.exclusive(run_dir, what="pretrain"):
        with pytest.raises(LockedError) as info:
            run_pretrain(settings)
        assert str(info.value).startswith(
            f"{run_dir}: another pretrain is writing this folder (pid {os.getpid()}"
        )
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # no config.yaml overwritten
    with (
        pytest.raises(LockedError),
        locks.exclusive(run_dir, what="pretrain"),
        locks.exclusive(run_dir, what="pretrain"),
    ):
        pass


def test_a_refusal_waits_for_the_holder_to_write_who_it_is(tmp_path):
    """The holder writes its record just after taking the lock: a refusal in that instant still names it."""
    import fcntl
    import json
    import threading

    folder = tmp_path / "busy"
    folder.mkdir()
    taken, release = threading.Event(), threading.Event()

    def slow_holder() -> None:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        taken.set()
        time.sleep(0.2)  # the record comes a moment after the lock
        os.pwrite(fd, json.dumps({"pid": 4242, "host": "elsewhere"}).encode(), 0)
        release.wait(5)
        os.close(fd)

    thread = threading.Thread(target=slow_holder)
    thread.start()
    try:
        assert taken.wait(5)
        with pytest.raises(LockedError) as info, locks.exclusive(folder, what="prepare-data"):
            pass
        assert "pid 4242 on elsewhere" in str(info.value)
    finally:
        release.set()
        thread.join()
