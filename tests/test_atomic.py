"""Atomic writes and concurrent CSV appends."""

from __future__ import annotations

import csv
import multiprocessing as mp

import pytest

from lvcg_cli.atomic import append_csv_row, atomic_path, write_text_atomic


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new content")
    assert target.read_text() == "new content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_written_files_respect_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644


def test_temp_file_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "x.npy") as tmp:
        assert tmp.suffix == ".npy"
        tmp.write_bytes(b"1")


def _append_many(path, worker, n):
    for i in range(n):
        append_csv_row(
            path, {"worker": worker, "i": i, "text": 'a,b "quoted"'}, columns=["worker", "i", "text"]
        )


@pytest.mark.slow
def test_concurrent_appends_keep_every_row_whole(tmp_path):
    path = tmp_path / "results.csv"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 120
    assert {(r["worker"], r["i"]) for r in rows} == {(str(w), str(i)) for w in range(3) for i in range(40)}
    assert all(r["text"] == 'a,b "quoted"' for r in rows)
    assert path.read_text().count("worker,i,text") == 1
