"""The open corpus of ``shared/data`` as the benchmarks read it: record paths by split, and windows.

The split is :func:`lvcg_cli.datasets.registry.open_corpus_split` (PTB-XL strat_fold 1-8 train,
9 val, 10 test; all of LUDB test; CinC and CPSC train), the one the bundled weights were trained
on (``lvcg_cli/assets/weights/WEIGHTS.md``). Records are preprocessed exactly like model input
(:func:`lvcg_cli.signals.preprocess.preprocess`: 100 Hz, 0.67-40 Hz, first 10 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lvcg_cli.datasets.registry import open_corpus_split

DEFAULT_DATA = Path(
    os.environ.get("LVCG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def ptbxl_paths(root: Path, split: str) -> list[Path]:
    """100-Hz PTB-XL headers of one split, in ecg_id order."""
    table = pd.read_csv(root / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    out = []
    for header in sorted((root / "ptbxl" / "records100").rglob("*_lr.hea")):
        ecg_id = int(header.stem.split("_")[0])
        if open_corpus_split("ptbxl", int(table.loc[ecg_id, "strat_fold"])) == split:
            out.append(header)
    return out


def ludb_paths(root: Path) -> list[Path]:
    return sorted((root / "ludb" / "data").glob("*.hea"), key=lambda p: int(p.stem))


def split_paths(root: Path, split: str) -> list[Path]:
    """Every record of ``split`` ('train', 'val' or 'test') in the open corpus."""
    paths = ptbxl_paths(root, split)
    if split == "test":
        paths += ludb_paths(root)
    if split == "train":
        paths += sorted((root / "cinc2021").glob("*.hea"))
        paths += sorted((root / "cpsc2018_raw").glob("*.mat"))
    return paths


def load_windows(paths: list[Path], data) -> tuple[np.ndarray, np.ndarray]:
    """(N, 12, n) float32 mV model windows and (N, 12) present masks of the records."""
    from lvcg_cli.signals.io import read_record
    from lvcg_cli.signals.preprocess import preprocess

    windows, present = [], []
    for path in paths:
        signal, mask, _ = preprocess(read_record(path, max_nan_gap_s=data.max_nan_gap_s), data)
        windows.append(signal)
        present.append(mask)
    return np.stack(windows), np.stack(present)


def source_of(path: Path) -> str:
    return "ludb" if "ludb" in path.parts else "ptbxl" if "ptbxl" in path.parts else "other"
