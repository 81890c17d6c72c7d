"""Operating-system failures: one line with the path and the cause, exit 2, nothing half-written.

Read-only and full disks are simulated by monkeypatching the writer (tests run as any user, and
root ignores permission bits); a folder where a file should be, or a file where a folder should
be, are real.
"""

from __future__ import annotations

import builtins
import errno
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_in_process import run_cli

from lvcg_cli import atomic
from lvcg_cli import main as main_mod
from lvcg_cli.atomic import append_csv_row, atomic_path, write_text_atomic
from lvcg_cli.engine import checkpoint as ckpt_mod
from lvcg_cli.errors import OutputError, describe_os_error, os_error_cause

RECORD = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records" / "ptbxl" / "00001_hr.hea"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def _raise(code: int, filename: str | None = None):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), *([filename] if filename else []))

    return fail


# ---------------------------------------------------------------------------------------------
# the vocabulary
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "no space left on device"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EISDIR, "is a folder, not a file"),
        (errno.ENOTDIR, "not a folder (a part of the path is a file)"),
        (errno.ENOENT, "no such file or folder"),
    ],
)
def test_os_errors_are_said_in_a_few_words(code, cause):
    exc = OSError(code, os.strerror(code), "/data/out.npy")
    assert os_error_cause(exc) == cause
    assert describe_os_error(exc) == f"/data/out.npy: {cause}"
    assert describe_os_error(OSError(code, os.strerror(code))) == cause


def test_output_error_survives_a_process_pool():
    exc = OutputError("/x/y.npy", "no space left on device", errno.ENOSPC)
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == "/x/y.npy: cannot write: no space left on device" and again.errno == errno.ENOSPC


# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
def test_full_disk_while_writing_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "emb.npy"
    np.save(target, np.arange(3))
    monkeypatch.setattr(np, "save", _raise(errno.ENOSPC))  # the writer fails half-way
    with pytest.raises(OutputError) as info, atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        np.save(tmp, np.zeros(1000))
    assert str(info.value) == f"{target}: cannot write: no space left on device"
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert leftovers(tmp_path) == []


def test_read_only_folder_at_rename_and_at_creation(tmp_path, monkeypatch):
    target = tmp_path / "out" / "result.txt"
    monkeypatch.setattr(atomic.os, "replace", _raise(errno.EROFS, str(target)))
    with pytest.raises(OutputError, match=r"result.txt: cannot write: read-only file system$"):
        write_text_atomic(target, "x")
    assert leftovers(tmp_path) == [] and not target.exists()
    monkeypatch.undo()
    monkeypatch.setattr(atomic.tempfile, "mkstemp", _raise(errno.EACCES, str(tmp_path / "out")))
    with pytest.raises(OutputError, match=r"result.txt: cannot write: permission denied$"):
        write_text_atomic(target, "x")


def test_output_named_like_a_folder_and_a_file_in_the_way(tmp_path):
    folder = tmp_path / "taken.npy"
    folder.mkdir()
    with pytest.raises(OutputError, match=r"taken.npy: cannot write: is a folder, not a file$"):
        write_text_atomic(folder, "x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        OutputError, match=r"file/sub/out.txt: cannot write: not a folder \(a part of the path"
    ):
        write_text_atomic(tmp_path / "file" / "sub" / "out.txt", "x")
    assert leftovers(tmp_path) == []


def test_an_input_error_inside_the_block_is_not_blamed_on_the_output(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt"):
        (tmp_path / "missing-input.txt").read_text()
    assert leftovers(tmp_path) == []


def test_csv_append_on_a_full_disk_never_leaves_half_a_row(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    append_csv_row(path, {"a": 1, "b": 2})
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", half_then_full)
    with pytest.raises(OutputError, match=r"results.csv: cannot write: no space left on device"):
        append_csv_row(path, {"a": 3, "b": 4})
    monkeypatch.undo()
    assert path.read_bytes() == before
    append_csv_row(path, {"a": 5, "b": 6})
    assert path.read_text().splitlines() == ["a,b", "1,2", "5,6"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_checkpoint_on_a_full_disk_is_one_line_and_keeps_the_previous_one(tmp_path, monkeypatch):
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(preset="lvcg-tiny", environ={})
    model = build_model(settings.model, settings.data)
    path = tmp_path / "final.pt"
    ckpt_mod.save_checkpoint(path, model=model, settings=settings, step=1)
    before = path.read_bytes()

    def full_disk(file, mode="r", *args, **kwargs):  # every write of the checkpoint goes to /dev/full
        return builtins.open("/dev/full" if "w" in mode else file, mode, *args, **kwargs)

    monkeypatch.setattr(ckpt_mod, "open", full_disk, raising=False)
    with pytest.raises(OutputError) as info:
        ckpt_mod.save_checkpoint(path, model=model, settings=settings, step=2)
    assert str(info.value) == f"{path}: cannot write: no space left on device"
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    assert torch.load(path, weights_only=True)["step"] == 1


# ---------------------------------------------------------------------------------------------
# through the command line: exit 2, one line
# ---------------------------------------------------------------------------------------------
def test_cli_output_naming_a_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.npy"
    out.mkdir()
    code, stdout, err = run_cli(monkeypatch, capsys, "embed", str(RECORD), "-o", str(out), "-q")
    assert (code, stdout) == (2, "")
    assert err == f"lvcg: error: {out}: cannot write: is a folder, not a file\n"


def test_cli_read_only_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(atomic.os, "replace", _raise(errno.EROFS, str(tmp_path / "e.npy")))
    code, _, err = run_cli(monkeypatch, capsys, "embed", str(RECORD), "-o", str(tmp_path / "e.npy"), "-q")
    assert code == 2 and err == f"lvcg: error: {tmp_path / 'e.npy'}: cannot write: read-only file system\n"
    assert list(tmp_path.iterdir()) == []


def test_cli_full_disk_on_stdout(tmp_path, monkeypatch, capsys):
    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            return None

    class Stdout:
        buffer = Full()

        def write(self, text):
            return len(text)

        def flush(self):
            return None

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdout", Stdout())
    code, _, err = run_cli(monkeypatch, capsys, "embed", str(RECORD), "-q", "-f")
    assert code == 2 and err == "lvcg: error: stdout: cannot write: no space left on device\n"


def test_cli_cache_dir_under_a_file(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LVCG_CACHE_DIR", str(blocker / "cache"))
    root = RECORD.parent
    code, out, err = run_cli(monkeypatch, capsys, "prepare-data", "folder", "--root", str(root), "-q")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert (
        err.startswith(f"lvcg: error: {blocker}/cache")
        and "not a folder (a part of the path is a file)" in err
    )


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/srv/x"),
            "lvcg: error: /srv/x: permission denied",
        ),
        (OSError(errno.EIO, "Input/output error"), "lvcg: error: input/output error (a failing disk"),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            "lvcg: error: text encoding: invalid start byte",
        ),
    ],
)
def test_main_maps_os_and_encoding_errors_to_exit_2(monkeypatch, capsys, exc, line):
    def boom():
        raise exc

    monkeypatch.setattr(main_mod, "app", boom)
    code, _, err = run_cli(monkeypatch, capsys)
    assert code == 2 and err.startswith(line) and err.count("\n") == 1
