"""Build ``lvcg_cli/assets/records/open_train.npz``: the training part of the bundled open records.

    python scripts/build_open_records.py [--data ../shared/data] [--out lvcg_cli/assets/records/open_train.npz]

Records: the PTB-XL 1.0.3 excerpt (``ptbxl/records500``, 500 Hz) and LUDB 1.0.1 (``ludb/data``),
kept only where :func:`lvcg_cli.datasets.registry.open_record_split` says ``train`` (PTB-XL
strat_fold 1-8; LUDB id % 5 != 0), so the held-out part (PTB-XL folds 9-10, LUDB id % 5 == 0)
stays out of the weights trained on the built-in data. Each record is read and preprocessed by the
signals layer exactly as ``lvcg prepare-data`` does with the default settings (100 Hz, 10 s,
0.67-40 Hz band-pass) and stored as float16 mV (rounded to a 1/256 mV grid, see QUANTUM_MV). Deterministic: sorted inputs, no randomness.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lvcg_cli.datasets.registry import open_record_split  # noqa: E402
from lvcg_cli.errors import RecordError  # noqa: E402
from lvcg_cli.settings import DataSettings  # noqa: E402
from lvcg_cli.signals.io import read_record  # noqa: E402
from lvcg_cli.signals.preprocess import preprocess  # noqa: E402

QUANTUM_MV = 1.0 / 256
"""Samples are rounded to this grid (3.9 uV; error <= 2 uV, under the ~10 uV noise floor of a clinical
ECG) before the float16 cast: the low mantissa bits of float16 are noise that zlib cannot compress,
and without them the file is 3.3 MB instead of 7.4 MB."""


def quantize(x: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(x, dtype=np.float32) / QUANTUM_MV) * QUANTUM_MV).astype(np.float16)


def collect(data_root: Path) -> list[tuple[str, str, int, Path]]:
    """(source, id, strat_fold or 0, header) of every training-part record present."""
    items = []
    database = pd.read_csv(data_root / "ptbxl" / "ptbxl_database.csv").sort_values("ecg_id")
    for _, row in database.iterrows():
        header = data_root / "ptbxl" / f"{row['filename_hr']}.hea"
        fold = int(row["strat_fold"])
        if header.is_file() and open_record_split("ptbxl", row["ecg_id"], fold) == "train":
            items.append(("ptbxl", f"ptbxl-{int(row['ecg_id']):05d}", fold, header))
    for header in sorted((data_root / "ludb" / "data").glob("*.hea"), key=lambda p: int(p.stem)):
        if open_record_split("ludb", header.stem) == "train":
            items.append(("ludb", f"ludb-{int(header.stem):03d}", 0, header))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=REPO / "lvcg_cli" / "assets" / "records" / "open_train.npz"
    )
    args = parser.parse_args()
    data = DataSettings()
    items = collect(args.data)
    signals, present, kept = [], [], []
    for source, ident, fold, header in items:
        try:
            x, mask, _ = preprocess(read_record(header, max_nan_gap_s=data.max_nan_gap_s), data)
        except RecordError as exc:
            print(f"skipped {exc}", file=sys.stderr)
            continue
        signals.append(quantize(x))
        present.append(mask)
        kept.append((source, ident, fold, header.relative_to(args.data).as_posix()))
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        signals=np.stack(signals),
        present=np.stack(present),
        ids=np.array([k[1] for k in kept]),
        sources=np.array([k[0] for k in kept]),
        strat_folds=np.array([k[2] for k in kept], dtype=np.int16),
        files=np.array([k[3] for k in kept]),
        fs=np.float64(data.fs),
        window_s=np.float64(data.window_s),
        bandpass=np.array(data.bandpass, dtype=np.float64),
        quantum_mv=np.float64(QUANTUM_MV),
        licences=np.array(
            ["ptbxl: CC BY 4.0 (Wagner et al. 2020)", "ludb: ODC-BY 1.0 (Kalyakulina et al. 2020)"]
        ),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    counts = pd.Series([k[0] for k in kept]).value_counts().to_dict()
    print(f"wrote {args.out}: {len(kept)} records {counts}, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
