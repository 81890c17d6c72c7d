"""Linear probes on the open records: lvcg's blocks against random-init and handcrafted features.

Usage::

    python benchmarks/probe.py [--checkpoint CKPT] [--data ../shared/data] [--seeds 0,1,2]
                               [--cache DIR] [--boot 2000]

Two tasks, both on records the bundled weights never pretrained on:

* **PTB-XL super-classes** (NORM, MI, STTC, CD, HYP) on the 1,332 ECGs of ``shared/data/ptbxl``
  (100-Hz files), prepared with ``--prepare.split strat_fold``: folds 1-8 train the probe, fold 9
  chooses C, fold 10 (175 ECGs) is the test set. The weights pretrained on folds 1-8 only.
* **LUDB left-axis deviation** on all 133 LUDB records (never pretrained on), by 5-fold
  cross-validation repeated 5 times (``lvcg probe --cv 5``): a test split would hold 3 positives.

Rows: ``lvcg`` (the whole embedding), ``lvcg learned`` (morphology + dynamics + rhythm blocks,
without the VCG block in mV), ``lvcg vcg`` (the VCG block alone), ``random-init`` (the same
architecture with fresh weights, one per seed; whole and learned blocks), ``features`` (186
handcrafted amplitude/spectral/rhythm features). The 3-lead rows embed from I, II, V2:
``12 -> 3`` fits the probe on 12-lead embeddings and scores 3-lead test embeddings (the view
invariance a user relies on); ``3 -> 3`` fits and scores on 3-lead embeddings.

Cells: test macro AUROC with a 95 % bootstrap interval over test records; gains are paired
bootstraps (both models' scores on the same resampled records). Random-init rows average the
seeds; their gains use seed 0's scores and list every seed's AUROC.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from open_corpus import DEFAULT_DATA  # noqa: E402

from lvcg_cli.datasets.prepared import open_prepared_data  # noqa: E402
from lvcg_cli.downstream.embedding_cache import cached_embeddings, embedding_model  # noqa: E402
from lvcg_cli.downstream.metrics import bootstrap_macro_auroc  # noqa: E402
from lvcg_cli.downstream.probe import labelled_rows, probe_cv, probe_once, probe_splits  # noqa: E402
from lvcg_cli.settings import resolve_settings  # noqa: E402
from lvcg_cli.signals.leads import parse_leads, visible_mask  # noqa: E402

THREE = "I,II,V2"
LEARNED = ("morphology", "dynamics", "rhythm")


def prepare(name: str, root: Path, cache: Path, extra: list[str]) -> None:
    """``lvcg prepare-data`` into the benchmark's own cache (reused when already complete)."""
    if (cache / "prepared" / name / "meta.json").is_file():
        return
    env = {**os.environ, "LVCG_CACHE_DIR": str(cache), "LVCG_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "lvcg_cli", "prepare-data", name, "--root", str(root), "-q", *extra]
    subprocess.run(cmd, check=True, env=env)


def block_rows(run, full: np.ndarray, model) -> dict[str, dict]:
    """The probe of the whole embedding, of its learned blocks and of its VCG block."""
    return {
        "lvcg": run(full),
        "lvcg learned": run(full[:, columns(model, LEARNED)]),
        "lvcg vcg": run(full[:, columns(model, ("vcg",))]),
    }


def columns(model, blocks) -> np.ndarray:
    layout = model.embedding_layout()
    return np.concatenate([np.arange(layout[b].start, layout[b].stop) for b in blocks])


class Bench:
    def __init__(self, args, settings):
        self.args, self.settings = args, settings
        self.cache = args.cache
        self.models = {}

    def model(self, kind: str, seed: int = 0):
        key = (kind, seed)
        if key not in self.models:
            self.models[key] = embedding_model(kind, self.args.checkpoint, self.settings, seed)
        return self.models[key]

    def task(self, dataset: str, task: str):
        """The prepared data set with the checkpoint's input settings, its task's labels and probe args."""
        emb = self.model("lvcg")
        settings = emb.settings  # the checkpoint's input and the bench's other settings
        data = open_prepared_data(dataset, settings)
        resolved = data.resolve_task(task)
        classes, labels = data.labels(resolved)
        probe = settings.probe
        fit = {"c_grid": probe.c_grid, "max_iter": probe.max_iter, "min_positives": probe.min_positives}
        return emb, data, resolved, classes, labels, fit

    def features(self, kind: str, data, seed: int = 0, visible: str | None = None) -> np.ndarray:
        mask = None if visible is None else visible_mask(parse_leads(visible))
        feats, _ = cached_embeddings(self.model(kind, seed), data, self.cache, visible=mask)
        return feats


def probe_ptbxl(bench: Bench, args) -> None:
    emb, data, task, classes, labels, fit = bench.task("ptbxl", "super")
    splits = probe_splits(data, task)
    y_test = labels[splits["test"]]

    def run(feats: np.ndarray, test_feats: np.ndarray | None = None, seed: int = 0) -> dict:
        if test_feats is not None:  # fit on one view, score another
            feats = feats.copy()
            feats[splits["test"]] = test_feats[splits["test"]]
        return probe_once(feats, labels, classes, splits, ratio=1.0, seed=seed, **fit)

    lvcg_full = bench.features("lvcg", data)
    lvcg_three = bench.features("lvcg", data, visible=THREE)
    learned = columns(emb.model, LEARNED)
    rows = {
        **block_rows(run, lvcg_full, emb.model),
        "lvcg 12 -> 3 leads": run(lvcg_full, lvcg_three),
        "lvcg 3 -> 3 leads": run(lvcg_three),
        "lvcg learned 12 -> 3": run(lvcg_full[:, learned], lvcg_three[:, learned]),
        "features": run(bench.features("features", data)),
        "features 3 -> 3 leads": run(bench.features("features", data, visible=THREE)),
    }
    seed_rows = {"random-init": [], "random-init learned": []}
    for seed in args.seeds:
        feats = bench.features("random-init", data, seed=seed)
        init_learned = columns(bench.model("random-init", seed).model, LEARNED)
        seed_rows["random-init"].append(run(feats, seed=seed))
        seed_rows["random-init learned"].append(run(feats[:, init_learned], seed=seed))
    print(
        f"\nPTB-XL super-classes ({', '.join(classes)}): {splits['train'].size} train / "
        f"{splits['val'].size} val / {y_test.shape[0]} test ECGs (strat_fold 1-8 / 9 / 10)"
    )
    print("| embedding | dims | test macro AUROC [95 % CI] |")
    print("|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row.get('dims', '')} | {cell(row)} |")
    for name, reps in seed_rows.items():
        values = ", ".join(f"{r['macro_auroc']:.3f}" for r in reps)
        mean = np.mean([r["macro_auroc"] for r in reps])
        print(f"| {name} (seeds {','.join(map(str, args.seeds))}) | | {mean:.3f} (per seed {values}) |")
    gains = [
        ("lvcg", "features", rows["lvcg"], rows["features"]),
        (
            "lvcg learned",
            "random-init learned (seed 0)",
            rows["lvcg learned"],
            seed_rows["random-init learned"][0],
        ),
        ("lvcg", "random-init (seed 0)", rows["lvcg"], seed_rows["random-init"][0]),
        ("lvcg 12 -> 3 leads", "lvcg", rows["lvcg 12 -> 3 leads"], rows["lvcg"]),
        (
            "lvcg 3 -> 3 leads",
            "features 3 -> 3 leads",
            rows["lvcg 3 -> 3 leads"],
            rows["features 3 -> 3 leads"],
        ),
    ]
    print_gains(gains, y_test, fit["min_positives"], args.boot)


def probe_ludb(bench: Bench, args) -> None:
    emb, data, task, classes, labels, fit = bench.task("ludb", "axis")
    rows_cv = labelled_rows(data, task)

    def run(feats: np.ndarray, seed: int = 0) -> dict:
        return probe_cv(feats, labels, classes, rows_cv, folds=5, repeats=5, seed=seed, **fit)

    lvcg_full = bench.features("lvcg", data)
    rows = {
        **block_rows(run, lvcg_full, emb.model),
        "lvcg 3 -> 3 leads": run(bench.features("lvcg", data, visible=THREE)),
        "features": run(bench.features("features", data)),
    }
    init = [run(bench.features("random-init", data, seed=s), seed=0) for s in args.seeds]
    y = labels[rows_cv]
    print(
        f"\nLUDB left-axis deviation: {int(y.sum())} positives of {y.shape[0]} labelled records, "
        "5-fold cross-validation x 5 repeats"
    )
    print("| embedding | macro AUROC [95 % CI] | spread over repeats (sd) |")
    print("|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {cell(row)} | {row['macro_auroc_repeat_std']:.3f} |")
    values = ", ".join(f"{r['macro_auroc']:.3f}" for r in init)
    print(
        f"| random-init (seeds {','.join(map(str, args.seeds))}) | {np.mean([r['macro_auroc'] for r in init]):.3f} (per seed {values}) | |"
    )
    gains = [
        ("lvcg", "features", rows["lvcg"], rows["features"]),
        ("lvcg learned", "random-init (seed 0)", rows["lvcg learned"], init[0]),
        ("lvcg", "random-init (seed 0)", rows["lvcg"], init[0]),
    ]
    print_gains(gains, y, fit["min_positives"], args.boot)


def cell(row: dict) -> str:
    return f"{row['macro_auroc']:.3f} [{row['macro_auroc_ci_low']:.3f}, {row['macro_auroc_ci_high']:.3f}]"


def print_gains(gains, y, min_positives: int, n_boot: int) -> None:
    print("\n| gain | AUROC difference [95 % paired bootstrap CI] |")
    print("|---|---|")
    for a, b, row_a, row_b in gains:
        low, high = bootstrap_macro_auroc(
            y, row_a["test_scores"], baseline=row_b["test_scores"], min_positives=min_positives, n_boot=n_boot
        )
        diff = row_a["macro_auroc"] - row_b["macro_auroc"]
        print(f"| {a} - {b} | {diff:+.3f} [{low:+.3f}, {high:+.3f}] |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument("--seeds", default="0,1,2", help="random-init seeds")
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lvcg-bench-probe-cache")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    prepare(
        "ptbxl",
        args.data / "ptbxl",
        args.cache,
        ["--prepare.ptbxl_rate", "100", "--prepare.split", "strat_fold"],
    )
    prepare("ludb", args.data / "ludb", args.cache, [])
    settings = resolve_settings(overrides={"paths.cache_dir": str(args.cache)}, environ={})
    bench = Bench(args, settings)
    print(f"checkpoint: {args.checkpoint or 'bundled weights'}")
    probe_ptbxl(bench, args)
    probe_ludb(bench, args)
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
