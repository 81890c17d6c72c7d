"""prepare-data throughput and memory against a plain sequential ``wfdb.rdrecord`` loop.

    python benchmarks/prepare_data.py [--data ../shared/data] [--copies 2] [--workers 2]

Records: the PTB-XL excerpt at 500 Hz (333 records of 10 s), copied ``--copies`` times into a
temporary folder, prepared as the ``folder`` data set (read + NaN repair + resample_poly to 100 Hz +
band-pass + window + float16 + atomic chunk writes + assembly). The baseline only *reads* the same
records with ``wfdb.rdrecord`` one after another (no preprocessing, nothing written). Each variant runs
in its own process (files already in the page cache: the loop runs first and is discarded once), and
reports records/s and peak resident memory (``getrusage``: the process itself and its largest child).
Memory is measured for ``--copies`` and ``3 * --copies`` records to show it does not grow with N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tree(data: Path, copies: int, where: Path) -> Path:
    root = where / f"tree-{copies}"
    root.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        copy = root / f"copy{k}"
        if not copy.exists():  # real copies: a walk does not follow directory links
            shutil.copytree(data / "ptbxl" / "records500", copy)
    return root


def _headers(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("copy*/*/*.hea"))


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def run_loop(root: Path) -> dict:
    import wfdb

    headers = _headers(root)
    start = time.perf_counter()
    for header in headers:
        wfdb.rdrecord(str(header.with_suffix("")))
    seconds = time.perf_counter() - start
    own, children = _peak_mb()
    return {"n": len(headers), "seconds": seconds, "own_mb": own, "child_mb": children}


def run_prepare(root: Path, workers: int, out: Path) -> dict:
    from lvcg_cli.console import set_quiet
    from lvcg_cli.datasets.prepare import prepare_dataset
    from lvcg_cli.settings import resolve_settings

    set_quiet(True)
    settings = resolve_settings(overrides={"prepare.chunk_size": 64})
    start = time.perf_counter()
    result = prepare_dataset("folder", settings, root=root, out=out, workers=workers, force=True)
    seconds = time.perf_counter() - start
    own, children = _peak_mb()
    return {
        "n": result.n_planned,
        "written": result.n_written,
        "seconds": seconds,
        "own_mb": own,
        "child_mb": children,
    }


def _child(mode: str, root: Path, workers: int, out: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--root",
        str(root),
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", choices=["loop", "prepare"])
    parser.add_argument("--root", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        result = (
            run_loop(args.root) if args.child == "loop" else run_prepare(args.root, args.workers, args.out)
        )
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = _tree(args.data, args.copies, tmp_path)
        _child("loop", root, 1, tmp_path / "out")  # warm the page cache
        loop = _child("loop", root, 1, tmp_path / "out")
        prep = _child("prepare", root, args.workers, tmp_path / "out")
        big_root = _tree(args.data, 3 * args.copies, tmp_path)
        big = _child("prepare", big_root, args.workers, tmp_path / "out-big")
    loop_rate = loop["n"] / loop["seconds"]
    prep_rate = prep["n"] / prep["seconds"]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"plain wfdb.rdrecord loop : {loop['n']} records in {loop['seconds']:.1f} s = {loop_rate:.1f} records/s, "
        f"peak RSS {loop['own_mb']:.0f} MB"
    )
    print(
        f"prepare-data (workers={args.workers}): {prep['n']} records in {prep['seconds']:.1f} s = "
        f"{prep_rate:.1f} records/s ({prep_rate / loop_rate:.2f}x the loop), peak RSS parent "
        f"{prep['own_mb']:.0f} MB, largest worker {prep['child_mb']:.0f} MB"
    )
    print(
        f"prepare-data, 3x records: {big['n']} records in {big['seconds']:.1f} s = "
        f"{big['n'] / big['seconds']:.1f} records/s, peak RSS parent {big['own_mb']:.0f} MB, "
        f"largest worker {big['child_mb']:.0f} MB"
    )
    marginal = (big["n"] - prep["n"]) / max(big["seconds"] - prep["seconds"], 1e-9)
    print(
        f"steady-state rate (extra records / extra seconds, start-up excluded): {marginal:.1f} records/s "
        f"({marginal / loop_rate:.2f}x the loop)"
    )
    projection_h = 800_000 / marginal / 3600
    print(
        f"projection for MIMIC-IV-ECG (800,000 records) at the steady-state rate: {projection_h:.1f} h "
        f"with {args.workers} workers (scales with workers up to the disk's read rate)"
    )


if __name__ == "__main__":
    main()
