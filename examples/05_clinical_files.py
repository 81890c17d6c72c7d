"""Clinical files to a table: embed DICOM, GE MUSE XML and other hospital exports into a parquet table.

What it shows: `lvcg_cli.read_record` recognises a file's format by its content (DICOM waveform,
GE MUSE XML, HL7 aECG, SCP-ECG, Philips XML, EDF, WFDB, CPSC .mat) and gives every one the same
record: mV, the 12 leads in canonical order, the file's own rate. `model.embed` turns each into a
vector whose dimensions have names (`model.embedding_names`); the table is written as parquet,
one row per record keyed by its id, with the same columns as `lvcg embed FILES -o table.parquet`.
It prints what it read and the heart rate from the named column `rr_mean` (mean RR interval in
seconds), which a reader can check against the rate the ECG machine printed.

Time: about 5 s on a laptop CPU for the 9 files of ../shared/data/clinical (4 s measured on a
shared 2-core machine with OMP_NUM_THREADS=1).

Run:  python examples/05_clinical_files.py [FILES_OR_FOLDERS ...] [-o clinical_embeddings.parquet]
      Default input: $LVCG_SHARED_DATA/clinical (default ../shared/data beside this repository:
      real DICOM, MUSE, aECG, SCP, Philips and EDF files, some GPL-3.0-licensed, read where they
      are and never copied), else the real DICOM ECG that ships with pydicom (MIT) and the
      records bundled with lvcg.
Needs: pip install "lvcg[clinical,parquet]" (pydicom, edfio, sierraecg; pyarrow).
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

import lvcg_cli


def default_inputs() -> list[Path]:
    """The shared clinical examples, else pydicom's DICOM ECG and lvcg's bundled records."""
    here = Path(__file__).resolve().parent
    shared = Path(os.environ.get("LVCG_SHARED_DATA", here.parent.parent / "shared" / "data"))
    if (shared / "clinical").is_dir():
        return [shared / "clinical"]
    from pydicom.data import get_testdata_file  # a local file of the pydicom package, no download

    return [
        Path(get_testdata_file("waveform_ecg.dcm")),
        Path(str(resources.files("lvcg_cli") / "assets" / "records")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="record files or folders (searched recursively)")
    parser.add_argument("-o", "--out", type=Path, default=Path("clinical_embeddings.parquet"))
    args = parser.parse_args()

    paths = lvcg_cli.find_records([str(p) for p in args.inputs or default_inputs()])
    model = lvcg_cli.load_model()  # the bundled weights
    ids, vectors, rows, kept = [], [], [], []
    for path in paths:
        try:
            record = lvcg_cli.read_record(path)  # format by content, not by suffix
            vector = model.embed(record.signal, fs=record.fs)  # absent (all-zero) leads are left out
        except lvcg_cli.RecordError as error:  # a file that is not a usable ECG: say why and go on
            print(f"skipped {error.path}: {error.problem}")
            continue
        ids.append(record.id)
        vectors.append(vector)
        kept.append(path)
        rows.append(
            {
                "id": record.id,
                "format": record.meta.get("format", "?"),
                "fs": record.fs,
                "seconds": round(record.n_samples / record.fs, 1),
                "leads": int(record.present.sum()),
            }
        )
    if not ids:
        raise SystemExit("no record could be read")
    if len(set(ids)) < len(ids):  # two files with the same stem in different folders: key those by path
        ids = [str(path) if ids.count(i) > 1 else i for i, path in zip(ids, kept, strict=True)]
        for row, key in zip(rows, ids, strict=True):
            row["id"] = key

    table = pd.DataFrame(np.stack(vectors), columns=model.embedding_names)
    table.insert(0, "id", ids)  # the layout `lvcg embed ... -o x.parquet` writes
    table.to_parquet(args.out, index=False)

    # What a reader can check at a glance: the columns have names, and rr_mean is in seconds.
    summary = pd.DataFrame(rows).set_index("id")
    summary["heart rate /min"] = (60.0 / table.set_index("id")["rr_mean"]).round(0)
    print(summary.to_string())
    print(f"wrote {args.out}: {len(table)} records x {table.shape[1] - 1} named columns (+ id)")
    print(f"read it back: pd.read_parquet({str(args.out)!r}).set_index('id')")


if __name__ == "__main__":
    main()
