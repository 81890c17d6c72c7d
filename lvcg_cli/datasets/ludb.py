"""LUDB 1.0.1 (200 ten-second 12-lead records at 500 Hz, one per subject) with diagnosis tasks.

Labels come from ``ludb.csv`` (its cells hold embedded newlines: every cell is stripped and split
on newlines):

* ``rhythm``: ``sinus`` = the Rhythms cell names a sinus rhythm (sinus rhythm / bradycardia /
  tachycardia / arrhythmia, irregular sinus rhythm); ``other`` otherwise (atrial fibrillation,
  flutter ...). One-vs-rest, so the positive class is ``other``.
* ``axis``: one class, ``LAD``: the "Electric axis of the heart" cell says left axis deviation
  (vs every other recorded axis: normal, vertical, horizontal, right). Records without a value
  get no label (split:axis ''), so a probe never treats them as negatives. Why not one class per
  axis value: right axis deviation has a single positive among the held-out records, and the
  positions normal/vertical/horizontal are one continuum cut at arbitrary angles; a macro AUROC
  over them measured mostly noise. Left-axis deviation (an axis beyond -30 degrees) is the
  clinically used, well-defined finding.
* ``hypertrophy``: ``LVH`` (left ventricular hypertrophy), ``LAH`` (left atrial hypertrophy),
  ``RAO`` (right atrial overload), ``RVH`` (right ventricular hypertrophy), ``LVO`` (left
  ventricular overload), ``LAO`` (left atrial overload); a record may have several.

Split: one record per subject, so any record split is patient-disjoint. Test is the held-out part of
the open-record split (:func:`registry.open_record_split`: id % 5 == 0, about 20 %), so records that
the bundled weights were pretrained on (self-supervised, without labels) are never probe-test
records; the rest is split train/val 7:1 by a hash of the record id (:func:`registry.hashed_split`).
Deterministic and independent of which records a copy holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lvcg_cli.datasets.registry import Plan, hashed_split, one_hot, open_record_split, require

NAME = "ludb"
ROOT_SETTING = "ludb_root"
EXPECTED = "the LUDB 1.0.1 release root with data/<n>.hea/.dat and ludb.csv"
LICENCE = "ODC-BY 1.0"
CITATION = "Kalyakulina AI, et al. LUDB: A New Open-Access Validation Tool for Electrocardiogram Delineation Algorithms. IEEE Access 2020; 8: 186181-186190."

AXIS = {
    "normal": "normal",
    "left axis deviation": "left",
    "right axis deviation": "right",
    "vertical": "vertical",
    "horizontal": "horizontal",
}
HYPERTROPHY = {
    "left ventricular hypertrophy": "LVH",
    "left atrial hypertrophy": "LAH",
    "right atrial overload": "RAO",
    "right ventricular hypertrophy": "RVH",
    "left ventricular overload": "LVO",
    "left atrial overload": "LAO",
}
TASKS = {
    "rhythm": ["other"],
    "axis": ["LAD"],
    "hypertrophy": list(HYPERTROPHY.values()),
}


def check_layout(root: Path, settings) -> None:
    require(root, NAME, "ludb.csv", EXPECTED)
    require(root, NAME, "data", EXPECTED)


def _items(cell) -> list[str]:
    if pd.isna(cell):
        return []
    return [line.strip() for line in str(cell).splitlines() if line.strip()]


def rhythm_is_sinus(cell) -> bool:
    items = [item.lower() for item in _items(cell)]
    return bool(items) and ("sinus" in items[0] and "atrial" not in items[0])


def axis_class(cell) -> str | None:
    for item in _items(cell):
        value = item.split(":", 1)[-1].strip().lower()
        if value in AXIS:
            return AXIS[value]
    return None


def build_plan(root: Path, settings) -> Plan:
    table = pd.read_csv(root / "ludb.csv", dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    table["ID"] = table["ID"].str.strip()
    table = table[table["ID"] != ""].copy()
    table = table.sort_values("ID", key=lambda s: s.astype(int)).reset_index(drop=True)
    ids = table["ID"]
    frame = pd.DataFrame(
        {
            "id": ids,
            "path": [str(root / "data" / f"{i}.hea") for i in ids],
            "source": [f"data/{i}.hea" for i in ids],
            "patient_id": ids,
        }
    )
    rhythm = pd.Series([[] if rhythm_is_sinus(c) else ["other"] for c in table["Rhythms"]], index=frame.index)
    axis = [axis_class(c) for c in table["Electric axis of the heart"]]
    hyper = pd.Series(
        [
            [HYPERTROPHY[i.lower()] for i in _items(c) if i.lower() in HYPERTROPHY]
            for c in table["Hypertrophies"]
        ],
        index=frame.index,
    )
    frame = pd.concat(
        [
            frame,
            one_hot(rhythm, TASKS["rhythm"], "rhythm"),
            one_hot(
                pd.Series([["LAD"] if a == "left" else [] for a in axis], index=frame.index),
                TASKS["axis"],
                "axis",
            ),
            one_hot(hyper, TASKS["hypertrophy"], "hypertrophy"),
        ],
        axis=1,
    )
    split = hashed_split(ids, fractions=(0.875, 0.125, 0.0), salt="ludb")
    held_out = np.array([open_record_split("ludb", i) == "test" for i in ids])
    split = split.where(~held_out, "test")
    frame["split"] = split.to_numpy()
    frame["split:rhythm"] = split.to_numpy()
    frame["split:hypertrophy"] = split.to_numpy()
    frame["split:axis"] = [s if a else "" for s, a in zip(split, axis, strict=True)]
    return Plan(
        dataset=NAME,
        root=root,
        records=frame,
        tasks=TASKS,
        default_task="axis",
        info={"licence": LICENCE, "citation": CITATION},
    )
