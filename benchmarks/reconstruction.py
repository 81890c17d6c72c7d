"""Reconstruction of hidden leads on held-out open records: the model against four baselines.

Usage::

    python benchmarks/reconstruction.py [--checkpoint CKPT | --random-init] [--data ../shared/data]

Records: the held-out part of the patient-disjoint split of the open records
(:func:`lvcg_cli.datasets.registry.open_record_split`): the PTB-XL excerpt's strat_fold 9-10
(500-Hz files) and LUDB records with id % 5 == 0. The bundled weights and the bundled training
records (``assets/records/open_train.npz``) come from the other part only.

Each record is preprocessed exactly like the model input (resampled to 100 Hz, 0.67-40 Hz
zero-phase band-pass, first 10 s), every method reconstructs all leads from the visible set, and
Pearson r and RMSE (mV) are computed per record on the hidden *independent* leads (those of I,
II, V1-V6 not visible), both sides band-passed again with the same filter
(:func:`lvcg_cli.downstream.reconstruct.score_windows`); the table shows the mean over leads of
the per-lead mean over records. The second table shows the amplitude: the peak-to-peak ratio
(reconstructed / original) per record, its median over records per lead, then the mean over leads
(1 = the right size; r alone is blind to gain).

Methods: ``physics-ideal`` / ``physics-dower`` (lift through the visible rows of the lead field,
project through all rows), ``linear`` (population least squares fitted on the training records),
``copy`` (each hidden lead is the best single visible lead with a fitted gain, chosen on the
training records), and ``lvcg`` (the checkpoint; ``--random-init`` uses untrained weights, only
to check that the benchmark runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lvcg_cli.datasets.registry import open_record_split
from lvcg_cli.downstream.baselines import fit_copy_best, fit_linear, load_train_signals
from lvcg_cli.downstream.reconstruct import Reconstructor, evaluate_windows
from lvcg_cli.settings import DataSettings
from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.leads import INDEPENDENT_LEADS, parse_leads, visible_mask
from lvcg_cli.signals.preprocess import preprocess

VISIBLE_SETS = ("I", "I,II", "I,II,V2", "II,V2,V5", "I,II,V1,V4")
DEFAULT_DATA = Path(
    os.environ.get("LVCG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def held_out_paths(root: Path) -> list[Path]:
    """Header paths of the held-out open records (PTB-XL strat_fold 9-10, LUDB id % 5 == 0)."""
    table = pd.read_csv(root / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    paths = []
    for header in sorted((root / "ptbxl" / "records500").rglob("*_hr.hea")):
        ecg_id = int(header.stem.split("_")[0])
        if open_record_split("ptbxl", ecg_id, int(table.loc[ecg_id, "strat_fold"])) == "test":
            paths.append(header)
    for header in sorted((root / "ludb" / "data").glob("*.hea"), key=lambda p: int(p.stem)):
        if open_record_split("ludb", header.stem) == "test":
            paths.append(header)
    return paths


class FixedMaps:
    """A baseline given as a function visible-mask -> LeadMap (same interface as a Reconstructor)."""

    def __init__(self, make):
        self.make = make
        self.maps = {}

    def reconstruct_windows(self, signals, present, visible):
        out = np.empty_like(signals)
        for key in np.unique(visible, axis=0):
            rows = (visible == key).all(axis=1)
            if key.tobytes() not in self.maps:
                self.maps[key.tobytes()] = self.make(key)
            out[rows] = self.maps[key.tobytes()].apply(signals[rows])
        return out, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the open records folder (shared/data)"
    )
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the bundled weights)")
    parser.add_argument(
        "--random-init", action="store_true", help="untrained lvcg-tiny (checks the benchmark runs)"
    )
    parser.add_argument("--limit", type=int, default=0, help="use only the first N held-out records")
    args = parser.parse_args()
    started = time.perf_counter()

    import torch

    from lvcg_cli.engine.checkpoint import load_model

    if args.random_init:
        from lvcg_cli.model.registry import build_model, model_settings

        torch.manual_seed(0)
        data, model_cfg = DataSettings(), model_settings("lvcg-tiny")
        model, label = build_model(model_cfg, data).eval(), "lvcg (random init)"
    else:
        model, ckpt = load_model(args.checkpoint)
        data, model_cfg, label = ckpt.data, ckpt.model, f"lvcg ({args.checkpoint or 'bundled'})"

    paths = held_out_paths(args.data)[: args.limit or None]
    windows, present = [], []
    for path in paths:
        signal, mask, _ = preprocess(read_record(path), data)
        windows.append(signal)
        present.append(mask)
    windows, present = np.stack(windows), np.stack(present)
    train, train_present, train_fs = load_train_signals()
    if train_fs != data.fs:
        sys.exit(f"training records are at {train_fs} Hz but the model runs at {data.fs} Hz")
    n_ptbxl = sum("ptbxl" in str(p) for p in paths)
    print(
        f"held-out records: {len(paths)} ({n_ptbxl} PTB-XL strat_fold 9-10, {len(paths) - n_ptbxl} LUDB id%5==0); "
        f"training records for linear/copy: {len(train)}"
    )

    methods = {
        "physics-ideal": Reconstructor("physics", data, geometry="ideal", eps=model_cfg.lift_eps),
        "physics-dower": Reconstructor("physics", data, geometry="dower", eps=model_cfg.lift_eps),
        "linear": FixedMaps(lambda v: fit_linear(train, v, train_present)),
        "copy": FixedMaps(lambda v: fit_copy_best(train, v, train_present)),
        label: Reconstructor("lvcg", data, model=model, model_settings=model_cfg, batch_size=64),
    }
    rows = []
    for spec in VISIBLE_SETS:
        mask = visible_mask(parse_leads(spec))
        hidden = [n for n in INDEPENDENT_LEADS if not mask[parse_leads(n)[0]]]
        scores = evaluate_windows(windows, present, mask, methods, data)
        row = {"visible": "{" + spec.replace(",", ", ") + "}"}
        for name, s in scores.items():
            overall = s.overall(hidden)
            row[name] = (overall["r_mean"], overall["rmse_mean"], overall["ptp_ratio_median"])
        rows.append(row)

    names = list(methods)
    print()
    print("| visible | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        print(
            f"| {row['visible']} | " + " | ".join(f"{row[n][0]:.3f} / {row[n][1]:.3f}" for n in names) + " |"
        )
    print("\ncells: mean Pearson r / mean RMSE (mV) over the hidden independent leads")
    print()
    print("| visible | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        print(f"| {row['visible']} | " + " | ".join(f"{row[n][2]:.2f}" for n in names) + " |")
    print(
        "\ncells: median peak-to-peak ratio (reconstructed / original), mean over the hidden independent leads"
    )
    for row in rows:
        model_r = row[label][0]
        best = max((n for n in names if n != label), key=lambda n: row[n][0])
        verdict = "beats" if model_r > row[best][0] else "does NOT beat"
        print(
            f"{row['visible']}: the model ({model_r:.3f}) {verdict} the best baseline {best} ({row[best][0]:.3f})"
        )
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
