"""The linear-probe table on the open records: lvcg against random-init and handcrafted features.

Usage::

    python benchmarks/probe.py [--checkpoint CKPT | --random-init] [--data ../shared/data]
                               [--seeds 0,1,2] [--ratio 1.0] [--cache DIR]

Data sets (prepared once into ``--cache``, default a folder under the system temp dir):

* the PTB-XL excerpt in ``shared/data/ptbxl`` (333 ECGs of ecg_id 1-500), super-classes, with
  ``--prepare.split strat_fold`` (folds 1-8 train, 9 validation, 10 test *within the excerpt*:
  about 265 / 33 / 35 records, so the test macro AUROC is noisy);
* LUDB (133 records in ``shared/data/ludb``), tasks axis, rhythm and hypertrophy (hash split
  70/10/20 of the data set module).

Every (data set, task) is probed with the checkpoint (``lvcg``), the same architecture with
fresh weights (``random-init``, one per seed) and the 186 handcrafted features, by
:class:`lvcg_cli.downstream.probe.ProbeRunner` (the code behind ``lvcg probe``), over the seeds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(
    os.environ.get("LVCG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
ENTRIES = (("ptbxl", "super"), ("ludb", "axis"), ("ludb", "rhythm"), ("ludb", "hypertrophy"))


def prepare(name: str, root: Path, cache: Path, extra: list[str]) -> None:
    """``lvcg prepare-data`` into the benchmark's own cache (reused when already complete)."""
    if (cache / "prepared" / name / "meta.json").is_file():
        return
    env = {**os.environ, "LVCG_CACHE_DIR": str(cache), "LVCG_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "lvcg_cli", "prepare-data", name, "--root", str(root), "-q", *extra]
    subprocess.run(cmd, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="no trained weights: probe lvcg-tiny's random init as 'lvcg' too",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ratio", type=float, default=1.0)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lvcg-bench-probe-cache")
    parser.add_argument("--csv", type=Path, default=None, help="also append every row to this CSV")
    args = parser.parse_args()
    started = time.perf_counter()

    prepare("ptbxl", args.data / "ptbxl", args.cache, ["--prepare.split", "strat_fold"])
    prepare("ludb", args.data / "ludb", args.cache, [])

    from lvcg_cli.downstream.probe import ProbeEntry, ProbeRunner
    from lvcg_cli.settings import resolve_settings

    checkpoint = args.checkpoint
    if args.random_init:
        import torch

        from lvcg_cli.engine.checkpoint import save_checkpoint
        from lvcg_cli.model.registry import build_model, model_settings
        from lvcg_cli.settings import DataSettings, Settings

        torch.manual_seed(12345)
        cfg = model_settings("lvcg-tiny")
        checkpoint = str(args.cache / "random-init-lvcg-tiny.pt")
        save_checkpoint(
            checkpoint, model=build_model(cfg, DataSettings()), settings=Settings(model=cfg), step=0
        )

    settings = resolve_settings(overrides={"paths.cache_dir": str(args.cache)})
    runner = ProbeRunner(
        settings, checkpoint=checkpoint, csv_path=args.csv, on_info=lambda m: print(m, file=sys.stderr)
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    report = runner.run(
        [ProbeEntry(d, t) for d, t in ENTRIES],
        ["lvcg", "random-init", "features"],
        ratio=args.ratio,
        seeds=seeds,
    )
    for skip in report.skipped:
        print(f"skipped {skip['dataset']}/{skip['task']}: {skip['reason']}")
    label = "lvcg (random init)" if args.random_init else "lvcg"
    print(
        f"\nlinear probe, ratio {args.ratio:g}, seeds {seeds}: test macro AUROC mean +- std (n_train / n_test)\n"
    )
    print("| data set / task | " + label + " | random-init | features |")
    print("|---|---|---|---|")
    for dataset, task in ENTRIES:
        cells = []
        for model in ("lvcg", "random-init", "features"):
            s = next(
                (
                    s
                    for s in report.summaries
                    if (s["dataset"], s["model"]) == (dataset, model) and task in s["task"]
                ),
                None,
            )
            r = next(
                (
                    r
                    for r in report.rows
                    if (r["dataset"], r["model"]) == (dataset, model) and task in r["task"]
                ),
                None,
            )
            cells.append(
                "-"
                if s is None
                else f"{s['macro_auroc_mean']:.3f} +- {s['macro_auroc_std']:.3f} ({r['n_train']}/{r['n_test']})"
            )
        print(f"| {dataset} / {task} | " + " | ".join(cells) + " |")
    for dataset, task in ENTRIES:
        row = {
            s["model"]: s["macro_auroc_mean"]
            for s in report.summaries
            if s["dataset"] == dataset and task in s["task"]
        }
        if len(row) == 3:
            best = max(("random-init", "features"), key=row.get)
            verdict = "beats" if row["lvcg"] > row[best] else "does NOT beat"
            print(
                f"{dataset}/{task}: {label} ({row['lvcg']:.3f}) {verdict} the best baseline {best} ({row[best]:.3f})"
            )
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
