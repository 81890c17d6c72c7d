"""How much more than reading does embedding cost?  ``lvcg embed`` against a plain ``wfdb.rdrecord`` loop.

Usage::

    python benchmarks/embed.py [--checkpoint CKPT | --random-init] [--records DIR] [--limit N] [--repeat 3]

Records: the PTB-XL excerpt at 500 Hz (``../shared/data/ptbxl/records500``, 333 records of 10 s).
Two comparisons, best of ``--repeat`` runs each:

* **command line**: wall time of ``lvcg embed DIR -o out.npy`` in a fresh process (Python start,
  imports, model load, reading, preprocessing, model) against a fresh process that only imports
  wfdb and reads every record with ``wfdb.rdrecord``;
* **in process**: :meth:`Embedder.embed_paths` against the same plain loop, both warm.

The goal is a total of at most 2x the plain read. The figures depend on the machine: run it on
an idle one (``uptime``) and say which.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_RECORDS = (
    Path(os.environ.get("LVCG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "ptbxl"
    / "records500"
)

PLAIN = """
import sys, wfdb
from pathlib import Path
paths = sorted(Path(sys.argv[1]).rglob("*.hea"))[: int(sys.argv[2]) or None]
for p in paths:
    wfdb.rdrecord(str(p.with_suffix("")))
"""


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument(
        "--random-init", action="store_true", help="an untrained lvcg-tiny (same cost as trained)"
    )
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch
    import wfdb

    from lvcg_cli.downstream.embed import Embedder
    from lvcg_cli.engine.checkpoint import load_model, save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="lvcg-bench-"))
    checkpoint = args.checkpoint
    if args.random_init:
        from lvcg_cli.model.registry import build_model, model_settings
        from lvcg_cli.settings import DataSettings, Settings

        torch.manual_seed(0)
        cfg = model_settings("lvcg-tiny")
        checkpoint = str(tmp / "random-init.pt")
        save_checkpoint(
            checkpoint, model=build_model(cfg, DataSettings()), settings=Settings(model=cfg), step=0
        )
    paths = sorted(args.records.rglob("*.hea"))[: args.limit or None]
    n = len(paths)
    print(f"{n} records from {args.records}; torch threads {torch.get_num_threads()}; cpus {os.cpu_count()}")
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min)")

    plain_cli = best_of(
        args.repeat,
        lambda: subprocess.run([sys.executable, "-c", PLAIN, str(args.records), str(args.limit)], check=True),
    )
    ckpt_args = ["--checkpoint", checkpoint] if checkpoint else []
    out = tmp / "emb.npy"
    cmd = [
        sys.executable,
        "-m",
        "lvcg_cli",
        "embed",
        str(args.records),
        "-o",
        str(out),
        "-q",
        "--batch-size",
        str(args.batch_size),
        *ckpt_args,
    ]
    if args.limit:
        cmd = [
            sys.executable,
            "-m",
            "lvcg_cli",
            "embed",
            *map(str, paths),
            "-o",
            str(out),
            "-q",
            "--batch-size",
            str(args.batch_size),
            *ckpt_args,
        ]
    embed_cli = best_of(args.repeat, lambda: subprocess.run(cmd, check=True))

    model, settings = load_model(checkpoint)
    embedder = Embedder(model, settings.data, settings.model, batch_size=args.batch_size)
    plain_warm = best_of(args.repeat, lambda: [wfdb.rdrecord(str(p.with_suffix(""))) for p in paths])
    embed_warm = best_of(args.repeat, lambda: embedder.embed_paths(paths))

    print()
    print("| | plain wfdb read | lvcg embed | ratio | embed records/s |")
    print("|---|---|---|---|---|")
    print(
        f"| command line (fresh process) | {plain_cli:.2f} s | {embed_cli:.2f} s | {embed_cli / plain_cli:.2f}x | {n / embed_cli:.0f} |"
    )
    print(
        f"| in process (warm) | {plain_warm:.2f} s | {embed_warm:.2f} s | {embed_warm / plain_warm:.2f}x | {n / embed_warm:.0f} |"
    )
    print(
        f"\nplain read: {n / plain_warm:.0f} records/s; model: {settings.model.name}, {model.embedding_dim}-d"
    )


if __name__ == "__main__":
    main()
