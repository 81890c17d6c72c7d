"""CPSC 2018 (ICBEB; 6,877 records of 6-60 s at 500 Hz) with its 9 rhythm/morphology classes.

Two forms of the release are understood:

* the original challenge files: ``TrainingSet1/``, ``TrainingSet2/``, ``TrainingSet3/`` with
  ``A####.mat`` (a struct ``ECG`` with ``data`` 12 x N in mV) and ``REFERENCE.csv`` (columns
  Recording, First_label, Second_label, Third_label) in the root or in one of those folders;
* the PhysioNet/CinC Challenge 2020/2021 WFDB copy (``A####.hea`` + ``.mat``, SNOMED CT codes in
  the ``#Dx`` header line), e.g. ``Training_WFDB/`` or ``training/cpsc_2018/g1/``.

Label codes of REFERENCE.csv (the official CPSC 2018 mapping): 1 Normal, 2 AF, 3 I-AVB,
4 LBBB, 5 RBBB, 6 PAC, 7 PVC, 8 STD, 9 STE. They are named as in the MELP partitions: NORM, AFIB,
1AVB, CLBBB, CRBBB, PAC, VPC, STD, STE (task ``dx``, in MELP's column order). SNOMED codes of the
WFDB copy map to the same classes (:data:`SNOMED`). Split: the bundled MELP ``icbeb`` partitions
(by ``filename`` A0001..); records in none get ``''``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lvcg_cli.datasets.registry import Plan, bundled_split_csv, one_hot, split_from_tables
from lvcg_cli.errors import DataLayoutError

NAME = "cpsc2018"
ROOT_SETTING = "cpsc2018_root"
EXPECTED = (
    "the CPSC 2018 root with TrainingSet1-3/A####.mat and REFERENCE.csv, or the Challenge 2020 WFDB copy "
    "with A####.hea/.mat"
)
LICENCE = "CC BY 4.0 (as redistributed by the PhysioNet/CinC Challenge 2020)"
CITATION = "Liu F, et al. An open access database for evaluating the algorithms of ECG rhythm and morphology abnormality detection. J Med Imaging Health Inform 2018; 8(7): 1368-1373."
CLASSES = ["AFIB", "VPC", "NORM", "1AVB", "CRBBB", "STE", "PAC", "CLBBB", "STD"]
REFERENCE_CODES = {
    1: "NORM",
    2: "AFIB",
    3: "1AVB",
    4: "CLBBB",
    5: "CRBBB",
    6: "PAC",
    7: "VPC",
    8: "STD",
    9: "STE",
}
SNOMED = {
    "426783006": "NORM",  # sinus rhythm
    "164889003": "AFIB",
    "270492004": "1AVB",
    "164909002": "CLBBB",
    "733534002": "CLBBB",  # complete LBBB (CinC 2021 spelling)
    "59118001": "CRBBB",
    "713427006": "CRBBB",  # complete RBBB (CinC 2021)
    "284470004": "PAC",
    "63593006": "PAC",  # supraventricular premature beats (CinC 2021 merges them with PAC)
    "164884008": "VPC",  # ventricular ectopics (CinC 2020 CPSC label)
    "427172004": "VPC",  # premature ventricular contractions (CinC 2021)
    "17338001": "VPC",  # ventricular premature beats
    "429622005": "STD",
    "164931005": "STE",
}


def _reference(root: Path) -> Path | None:
    for candidate in [root / "REFERENCE.csv", *sorted(root.glob("*/REFERENCE.csv"))]:
        if candidate.is_file():
            return candidate
    return None


def _mats(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("TrainingSet*/A*.mat") if not p.with_suffix(".hea").is_file())


def check_layout(root: Path, settings) -> None:
    if _reference(root) is not None and (_mats(root) or next(root.glob("A*.mat"), None)):
        return
    if next(root.rglob("A*.hea"), None) is not None:
        return
    what = (
        "REFERENCE.csv but no TrainingSet*/A####.mat"
        if _reference(root)
        else "no REFERENCE.csv and no A####.hea"
    )
    raise DataLayoutError(f"{NAME}: {root} has {what} (expected {EXPECTED})")


def _original(root: Path) -> pd.DataFrame:
    reference = pd.read_csv(_reference(root), dtype=str, keep_default_na=False)
    labels = {}
    for _, row in reference.iterrows():
        codes = [row.get(c, "") for c in ("First_label", "Second_label", "Third_label")]
        labels[row["Recording"].strip()] = [REFERENCE_CODES[int(float(c))] for c in codes if str(c).strip()]
    mats = _mats(root) or sorted(root.glob("A*.mat"))
    return pd.DataFrame(
        {
            "id": [m.stem for m in mats],
            "path": [str(m) for m in mats],
            "source": [m.relative_to(root).as_posix() for m in mats],
            "labels": [labels.get(m.stem, []) for m in mats],
        }
    )


def _header_dx(header: Path) -> list[str]:
    for line in header.read_text(errors="replace").splitlines():
        if line.startswith("#") and line.lstrip("# ").lower().startswith("dx:"):
            return [c.strip() for c in line.split(":", 1)[1].split(",") if c.strip()]
    return []


def _wfdb(root: Path) -> pd.DataFrame:
    headers = sorted(root.rglob("A*.hea"))
    return pd.DataFrame(
        {
            "id": [h.stem for h in headers],
            "path": [str(h) for h in headers],
            "source": [h.relative_to(root).as_posix() for h in headers],
            "labels": [sorted({SNOMED[c] for c in _header_dx(h) if c in SNOMED}) for h in headers],
        }
    )


def build_plan(root: Path, settings) -> Plan:
    original = _reference(root) is not None and bool(_mats(root) or next(root.glob("A*.mat"), None))
    frame = _original(root) if original else _wfdb(root)
    frame = frame.drop_duplicates("id").sort_values("id").reset_index(drop=True)
    labels = one_hot(frame.pop("labels"), CLASSES, "dx")
    frame = pd.concat([frame, labels], axis=1)
    tables = {
        s: bundled_split_csv(f"icbeb/icbeb_{s}")["filename"].astype(str) for s in ("train", "val", "test")
    }
    frame["split"] = split_from_tables(frame["id"], tables).to_numpy()
    return Plan(
        dataset=NAME,
        root=root,
        records=frame,
        tasks={"dx": CLASSES},
        default_task="dx",
        info={"licence": LICENCE, "citation": CITATION, "form": "original" if original else "wfdb"},
    )
