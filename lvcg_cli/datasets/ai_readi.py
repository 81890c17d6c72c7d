"""AI-READI (Philips PageWriter TC30 12-lead ECGs, WFDB) with person-level cardiometabolic labels.

Layout (release v1/v2)::

    <root>/cardiac_ecg/manifest.tsv
    <root>/cardiac_ecg/ecg_12lead/philips_tc30/<person_id>/<person_id>_ecg_<uid>.hea/.dat
    <root>/clinical_data/condition_occurrence.csv        (OMOP CDM)

``manifest.tsv`` is read for the person of each record (a ``person_id`` or ``participant_id``
column and a column whose name contains ``path``); without a usable manifest the records are
found by walking ``cardiac_ecg/`` and the person is the number that starts the file name.

Task ``cardio_relevant``: one class per condition group, a person is positive when any row of
``condition_occurrence.csv`` for that person matches the group, by OMOP ``condition_concept_id``
(:data:`CONCEPTS`) or, failing that, by keywords in ``condition_source_value`` /
``condition_source_concept_id`` text (:data:`KEYWORDS`). Limits (documented in
docs/DATA_PREPARATION.md): the labels are self-reported history from the study questionnaire
mapped to OMOP, not adjudicated diagnoses; the concept list covers the standard concepts for
each group but not every descendant concept; the absence of a row means "not reported", which is
treated as negative. All ECGs of a person carry the person's labels.

Split: by person (hash of person_id, 70/10/20 %): deterministic and patient-disjoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lvcg_cli.console import warn
from lvcg_cli.datasets.registry import Plan, hashed_split, one_hot, require

NAME = "ai-readi"
ROOT_SETTING = "ai_readi_root"
EXPECTED = "the AI-READI release root with cardiac_ecg/ (manifest.tsv, ecg_12lead/...) and clinical_data/condition_occurrence.csv"
LICENCE = "AI-READI Data Use Agreement (controlled access; do not redistribute)"
CITATION = "AI-READI Consortium. Flagship Dataset of Type 2 Diabetes from the AI-READI Project. FAIRhub 2024. doi:10.60775/fairhub.2"
TASK = "cardio_relevant"
CLASSES = ["heart_attack", "other_heart", "type2_diabetes", "hypertension", "pulmonary"]
CONCEPTS = {
    "heart_attack": {
        4329847,
        312327,
        434376,
        438170,
        444406,
    },  # myocardial infarction (old / acute / subsequent)
    "other_heart": {
        321588,
        316139,
        4185932,
        315286,
        321318,
        313217,
    },  # heart disease, failure, IHD, angina, AF
    "type2_diabetes": {201826, 443238, 4193704},  # type 2 diabetes mellitus (+ with complications)
    "hypertension": {320128, 316866, 319826},  # essential / hypertensive disorder / secondary
    "pulmonary": {255573, 317009, 261325, 4063381},  # COPD, asthma, emphysema, pulmonary disease
}
KEYWORDS = {
    "heart_attack": (r"heart attack", r"myocardial infarct"),
    "other_heart": (
        r"other heart",
        r"heart disease",
        r"heart failure",
        r"angina",
        r"coronary",
        r"atrial fib",
    ),
    "type2_diabetes": (r"type 2 diabetes", r"type ii diabetes", r"\bt2d", r"type 2 diab"),
    "hypertension": (r"hypertension", r"high blood pressure"),
    "pulmonary": (
        r"pulmonary disease",
        r"\bcopd\b",
        r"chronic obstructive",
        r"emphysema",
        r"lung disease",
        r"asthma",
    ),
}


def check_layout(root: Path, settings) -> None:
    folder = require(root, NAME, "cardiac_ecg", EXPECTED)
    if next(folder.rglob("*.hea"), None) is None:
        from lvcg_cli.errors import DataLayoutError

        raise DataLayoutError(f"{NAME}: {folder} holds no .hea records (expected {EXPECTED})")


def _conditions_file(root: Path) -> Path | None:
    for candidate in (root / "clinical_data" / "condition_occurrence.csv", root / "condition_occurrence.csv"):
        if candidate.is_file():
            return candidate
    return next(root.glob("*/condition_occurrence.csv"), None)


def _person_from_name(path: Path) -> str:
    match = re.match(r"(\d+)", path.name) or re.match(r"(\d+)", path.parent.name)
    return match.group(1) if match else path.parent.name


def _records(root: Path) -> pd.DataFrame:
    folder = root / "cardiac_ecg"
    manifest = folder / "manifest.tsv"
    if manifest.is_file():
        table = pd.read_csv(manifest, sep="\t", dtype=str, keep_default_na=False)
        person_col = next((c for c in ("person_id", "participant_id") if c in table), None)
        path_col = next((c for c in table.columns if "path" in c.lower()), None)
        if person_col and path_col:
            rows = []
            for person, text in zip(table[person_col], table[path_col], strict=True):
                relative = text.strip().lstrip("/")
                candidates = [root / relative, folder / relative, folder / Path(relative).name]
                found = next((c for c in candidates if c.with_suffix(".hea").is_file()), candidates[0])
                header = found.with_suffix(".hea")
                rows.append({"person_id": person.strip(), "path": str(header)})
            return pd.DataFrame(rows)
    headers = sorted(folder.rglob("*.hea"))
    return pd.DataFrame(
        {"person_id": [_person_from_name(h) for h in headers], "path": [str(h) for h in headers]}
    )


def person_labels(conditions: pd.DataFrame) -> dict[str, list[str]]:
    """person_id -> condition groups reported for that person."""
    out: dict[str, set[str]] = {}
    concept = pd.to_numeric(conditions.get("condition_concept_id", pd.Series(dtype=str)), errors="coerce")
    text = (
        conditions.get("condition_source_value", pd.Series("", index=conditions.index))
        .astype(str)
        .str.lower()
    )
    persons = conditions["person_id"].astype(str).str.strip()
    for group in CLASSES:
        hit = concept.isin(CONCEPTS[group]) | text.str.contains("|".join(KEYWORDS[group]), regex=True)
        for person in persons[hit.to_numpy()]:
            out.setdefault(person, set()).add(group)
    return {person: sorted(groups) for person, groups in out.items()}


def build_plan(root: Path, settings) -> Plan:
    frame = _records(root)
    frame["id"] = [Path(p).stem for p in frame["path"]]
    frame["source"] = [
        Path(p).relative_to(root).as_posix() if Path(p).is_relative_to(root) else p for p in frame["path"]
    ]
    frame = frame.sort_values("source").reset_index(drop=True)
    conditions_path = _conditions_file(root)
    tasks: dict[str, list[str]] = {}
    if conditions_path is None:
        warn(
            f"{NAME}: no clinical_data/condition_occurrence.csv under {root}; records are prepared without labels"
        )
    else:
        conditions = pd.read_csv(conditions_path, dtype=str, keep_default_na=False)
        labels = person_labels(conditions)
        lists = frame["person_id"].map(lambda p: labels.get(str(p), []))
        frame = pd.concat([frame, one_hot(lists, CLASSES, TASK)], axis=1)
        tasks = {TASK: CLASSES}
    frame["split"] = hashed_split(frame["person_id"], salt="ai-readi").to_numpy()
    return Plan(
        dataset=NAME,
        root=root,
        records=frame,
        tasks=tasks,
        default_task=TASK if tasks else None,
        info={"licence": LICENCE, "citation": CITATION, "labels": "person-level, OMOP condition_occurrence"},
    )
