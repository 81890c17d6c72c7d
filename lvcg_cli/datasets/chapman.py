"""Chapman-Shaoxing-Ningbo (PhysioNet ecg-arrhythmia 1.0.0; 45,152 ten-second records at 500 Hz).

Layout: ``WFDBRecords/NN/NNN/JS#####.hea/.mat`` (SNOMED CT codes in the ``#Dx`` header line) and
``ConditionNames_SNOMED-CT.csv`` (AcronymName, FullName, Snomed_CT) in the root.

Tasks:

* ``lvcg`` (default): SR, AFIB, 1AVB, RBBB, the four classes the LVCG paper probes;
* ``melp``: the 38 label columns of the MELP/MERL partitions;
* both are taken from the bundled MELP tables (joined on the record name), so the published
  protocol is reproduced exactly, its quirks included (MELP has no SB column, and its CR column is
  also set for CCR records). Records in no MELP table get split ``''`` and zero labels there.
* ``dx``: every condition of the header's SNOMED codes as an acronym, via the release's
  ``ConditionNames_SNOMED-CT.csv`` when present, else the bundled :data:`SNOMED_ACRONYMS`
  (the same table; codes it lacks are ignored and counted in meta.json).

The MELP ``ecg_path`` column is rooted at ``/chapman/``; records are matched by their file stem,
so the user's folder can sit anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lvcg_cli.datasets.registry import Plan, bundled_split_csv, one_hot, require

NAME = "chapman"
ROOT_SETTING = "chapman_root"
EXPECTED = "the PhysioNet ecg-arrhythmia 1.0.0 root with WFDBRecords/NN/NNN/JS#####.hea/.mat"
LICENCE = "CC BY 4.0"
CITATION = "Zheng J, et al. A 12-lead electrocardiogram database for arrhythmia research covering more than 10,000 patients. Sci Data 2020; 7: 48."
LVCG_CLASSES = ["SR", "AFIB", "1AVB", "RBBB"]

# SNOMED CT code -> acronym of ecg-arrhythmia 1.0.0's ConditionNames_SNOMED-CT.csv (codes that the
# table gives several acronyms keep the first: LBBB, MI, IDC, WAVN).
SNOMED_ACRONYMS = {
    "270492004": "1AVB",
    "195042002": "2AVB",
    "54016002": "2AVB1",
    "28189009": "2AVB2",
    "27885002": "3AVB",
    "251173003": "ABI",
    "39732003": "ALS",
    "284470004": "APB",
    "164917005": "AQW",
    "47665007": "ARS",
    "233917008": "AVB",
    "251199005": "CCR",
    "251198002": "CR",
    "428417006": "ERV",
    "164942001": "FQRS",
    "698252002": "IDC",
    "426995002": "JEB",
    "251164006": "JPT",
    "164909002": "LBBB",
    "164873001": "LVH",
    "251146004": "LVQRSAL",
    "251148003": "LVQRSCL",
    "251147008": "LVQRSLL",
    "164865005": "MI",
    "164947007": "PRIE",
    "164912004": "PWC",
    "111975006": "QTIE",
    "446358003": "RAH",
    "59118001": "RBBB",
    "89792004": "RVH",
    "429622005": "STDD",
    "164930006": "STE",
    "428750005": "STTC",
    "164931005": "STTU",
    "164934002": "TWC",
    "59931005": "TWO",
    "164937009": "UW",
    "11157007": "VB",
    "75532003": "VEB",
    "13640000": "VFW",
    "17338001": "VPB",
    "195060002": "VPE",
    "251180001": "VET",
    "195101003": "WAVN",
    "74390002": "WPW",
    "426177001": "SB",
    "426783006": "SR",
    "164889003": "AFIB",
    "427084000": "ST",
    "164890007": "AF",
    "427393009": "SA",
    "426761007": "SVT",
    "713422000": "AT",
    "233896004": "AVNRT",
    "233897008": "AVRT",
}


def check_layout(root: Path, settings) -> None:
    folder = require(root, NAME, "WFDBRecords", EXPECTED)
    if next(folder.glob("*/*/*.hea"), None) is None:
        from lvcg_cli.errors import DataLayoutError

        raise DataLayoutError(f"{NAME}: {folder} holds no NN/NNN/JS#####.hea records (expected {EXPECTED})")


def acronym_table(root: Path) -> dict[str, str]:
    path = root / "ConditionNames_SNOMED-CT.csv"
    if not path.is_file():
        return dict(SNOMED_ACRONYMS)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    mapping: dict[str, str] = {}
    for _, row in table.iterrows():
        mapping.setdefault(str(row["Snomed_CT"]).strip(), str(row["AcronymName"]).strip())
    return mapping


def _header_dx(header: Path) -> list[str]:
    for line in header.read_text(errors="replace").splitlines():
        if line.startswith("#") and line.lstrip("# ").lower().startswith("dx:"):
            return [c.strip() for c in line.split(":", 1)[1].split(",") if c.strip()]
    return []


def melp_tables() -> pd.DataFrame:
    parts = []
    for split in ("train", "val", "test"):
        table = bundled_split_csv(f"chapman/chapman_{split}")
        table["split"] = split
        parts.append(table)
    table = pd.concat(parts, ignore_index=True)
    table["id"] = table["ecg_path"].map(lambda p: Path(str(p)).stem)
    return table.drop_duplicates("id").set_index("id")


def build_plan(root: Path, settings) -> Plan:
    headers = sorted((root / "WFDBRecords").glob("*/*/*.hea"))
    mapping = acronym_table(root)
    frame = pd.DataFrame(
        {
            "id": [h.stem for h in headers],
            "path": [str(h) for h in headers],
            "source": [h.relative_to(root).as_posix() for h in headers],
        }
    )
    codes = [_header_dx(h) for h in headers]
    unknown = sorted({c for row in codes for c in row if c not in mapping})
    dx_classes = sorted(set(mapping.values()))
    dx = one_hot(pd.Series([[mapping[c] for c in row if c in mapping] for row in codes]), dx_classes, "dx")

    melp = melp_tables()
    melp_classes = [c for c in melp.columns if c not in {"ecg_path", "age", "diagnose", "split"}]
    joined = melp.reindex(frame["id"])
    frame["split"] = joined["split"].fillna("").astype(str).to_numpy()
    for task, classes in (("lvcg", LVCG_CLASSES), ("melp", melp_classes)):
        for name in classes:
            frame[f"{task}:{name}"] = joined[name].fillna(0).astype("int8").to_numpy()
    frame = pd.concat([frame, dx.set_index(frame.index)], axis=1)
    return Plan(
        dataset=NAME,
        root=root,
        records=frame,
        tasks={"lvcg": LVCG_CLASSES, "melp": melp_classes, "dx": dx_classes},
        default_task="lvcg",
        info={"licence": LICENCE, "citation": CITATION, "unknown_snomed_codes": unknown},
    )
