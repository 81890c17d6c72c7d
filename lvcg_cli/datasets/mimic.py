"""MIMIC-IV-ECG (about 800,000 ten-second 12-lead records at 500 Hz, WFDB), for pretraining.

Layout: ``files/p####/p########/s########/<study>.hea/.dat`` and, in the release root,
``record_list.csv`` (subject_id, study_id, file_name, ecg_time, path). The list is used when
present (no walk over 800k files); otherwise ``files/`` is walked. Quirks handled by the signals
layer and checked by the tests: the leads are stored I, II, III, aVR, **aVF, aVL**, V1-V6 (matched
by name, so they land in canonical order), and some records hold NaN samples (short gaps are
interpolated and flagged ``nan_repaired``; a lead with a long gap becomes absent).

Besides the packed cache, ``manifest.jsonl`` lists ``id`` (study id), ``ecg_path`` (the record
path without extension), ``subject_id`` and ``study_id``: the original LVCG manifest form.
Unlabelled: every record gets split ``''`` (pretraining holds out its own validation fraction).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lvcg_cli.datasets.registry import Plan
from lvcg_cli.errors import DataLayoutError

NAME = "mimic"
ROOT_SETTING = "mimic_root"
EXPECTED = (
    "the MIMIC-IV-ECG release root with files/p####/p########/s########/<study>.hea and record_list.csv"
)
LICENCE = "PhysioNet Credentialed Health Data License 1.5.0 (do not redistribute)"
CITATION = (
    "Gow B, et al. MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset (version 1.0). PhysioNet 2023."
)


def check_layout(root: Path, settings) -> None:
    if not (root / "files").is_dir() and not (root / "record_list.csv").is_file():
        raise DataLayoutError(f"{NAME}: {root} has no files/ and no record_list.csv (expected {EXPECTED})")


def _from_record_list(root: Path) -> pd.DataFrame:
    table = pd.read_csv(root / "record_list.csv", dtype=str, keep_default_na=False)
    if "path" not in table:
        raise DataLayoutError(
            f"{NAME}: {root / 'record_list.csv'} has no 'path' column (expected {EXPECTED})"
        )
    relative = table["path"].str.strip().str.removesuffix(".hea")
    study = table["study_id"] if "study_id" in table else relative.map(lambda p: Path(p).name)
    return pd.DataFrame(
        {
            "id": study.astype(str),
            "path": [str(root / f"{rel}.hea") for rel in relative],
            "source": [f"{rel}.hea" for rel in relative],
            "subject_id": table["subject_id"].astype(str) if "subject_id" in table else "",
            "study_id": study.astype(str),
        }
    )


def _from_walk(root: Path) -> pd.DataFrame:
    headers = sorted((root / "files").glob("p*/p*/s*/*.hea"))
    if not headers:  # tolerate a flatter copy
        headers = sorted((root / "files").rglob("*.hea"))
    rows = []
    for header in headers:
        relative = header.relative_to(root).as_posix()
        subject = next(
            (part[1:] for part in header.parts[::-1] if len(part) == 9 and part.startswith("p")), ""
        )
        rows.append(
            {
                "id": header.stem,
                "path": str(header),
                "source": relative,
                "subject_id": subject,
                "study_id": header.stem,
            }
        )
    return pd.DataFrame(rows, columns=["id", "path", "source", "subject_id", "study_id"])


def build_plan(root: Path, settings) -> Plan:
    frame = _from_record_list(root) if (root / "record_list.csv").is_file() else _from_walk(root)
    frame = frame.sort_values("source", kind="stable").reset_index(drop=True)
    return Plan(dataset=NAME, root=root, records=frame, info={"licence": LICENCE, "citation": CITATION})
