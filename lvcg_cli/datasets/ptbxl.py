"""PTB-XL 1.0.3 with the labels of the PTB-XL benchmark (Strodthoff et al. 2021).

Labels are built the way the benchmark builds them:

* ``scp_codes`` is a dict literal (``ast.literal_eval``) of statement -> likelihood; *every* key
  counts, a likelihood of 0 included (0 means "unknown likelihood", not "absent").
* ``scp_statements.csv`` (statement code in the unnamed first column) marks each statement
  ``diagnostic`` / ``form`` / ``rhythm`` and gives diagnostic statements a ``diagnostic_class``
  (5 super-classes) and ``diagnostic_subclass`` (23 sub-classes).
* Tasks: ``super`` (5), ``sub`` (23), ``diag`` (44 diagnostic statements), ``form`` (19),
  ``rhythm`` (12), ``all`` (71). Classes are in sorted order (as the benchmark's
  MultiLabelBinarizer orders them).

Splits: ``--prepare.split melp`` (default) uses the bundled MELP/MERL partitions for super, sub,
form and rhythm (each task has its own ``split:<task>`` column, because a record without a label
of a task is not in that task's files; ``split`` is the super-class one; records in no file get
``''``); diag and all follow strat_fold. ``--prepare.split strat_fold``: folds 1-8 train, 9 val,
10 test, per task only for records with at least one label of the task.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from lvcg_cli.datasets.registry import Plan, bundled_split_csv, one_hot, require, split_from_tables
from lvcg_cli.errors import DataLayoutError

NAME = "ptbxl"
ROOT_SETTING = "ptbxl_root"
EXPECTED = (
    "the PTB-XL 1.0.3 release root with records100/, records500/, ptbxl_database.csv, scp_statements.csv"
)
TASKS = ("super", "sub", "form", "rhythm", "diag", "all")
PLAN_SETTINGS = ("ptbxl_rate", "split")
"""The --prepare settings that change which records are read or how they are labelled and split."""
MELP_TASKS = {"super": "super_class", "sub": "sub_class", "form": "form", "rhythm": "rhythm"}
LICENCE = "CC BY 4.0"
CITATION = (
    "Wagner P, et al. PTB-XL, a large publicly available electrocardiography dataset. Sci Data 2020; 7: 154."
)


def check_layout(root: Path, settings) -> None:
    require(root, NAME, "ptbxl_database.csv", EXPECTED)
    require(root, NAME, "scp_statements.csv", EXPECTED)
    folder = f"records{settings.prepare.ptbxl_rate}"
    if not (root / folder).is_dir():
        other = "records100" if folder == "records500" else "records500"
        hint = (
            f"; it has {other}/, so add --prepare.ptbxl_rate {other[7:]}" if (root / other).is_dir() else ""
        )
        raise DataLayoutError(f"{NAME}: {root} has no {folder}/ (expected {EXPECTED}){hint}")


def read_statements(path: Path) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by statement code."""
    statements = pd.read_csv(path, index_col=0)
    statements.index = statements.index.astype(str).str.strip()
    return statements


def task_classes(statements: pd.DataFrame) -> dict[str, list[str]]:
    """Class names of every task, from the statements table alone (so counts never depend on the records)."""
    diagnostic = statements[statements["diagnostic"] == 1]
    return {
        "super": sorted(diagnostic["diagnostic_class"].dropna().astype(str).unique()),
        "sub": sorted(diagnostic["diagnostic_subclass"].dropna().astype(str).unique()),
        "form": sorted(statements.index[statements["form"] == 1]),
        "rhythm": sorted(statements.index[statements["rhythm"] == 1]),
        "diag": sorted(diagnostic.index),
        "all": sorted(statements.index),
    }


def parse_scp_codes(text: str) -> dict[str, float]:
    """``"{'NORM': 100.0, 'SR': 0.0}"`` -> dict (one-line-safe: anything unparsable is empty)."""
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return {}
    return {str(k).strip(): float(v) for k, v in value.items()} if isinstance(value, dict) else {}


def record_labels(codes: dict[str, float], statements: pd.DataFrame) -> dict[str, list[str]]:
    """Labels of one record for every task (likelihood ignored: every listed statement counts)."""
    diagnostic = statements["diagnostic"] == 1
    out: dict[str, list[str]] = {task: [] for task in TASKS}
    for code in codes:
        if code not in statements.index:
            continue
        row = statements.loc[code]
        out["all"].append(code)
        if diagnostic.loc[code]:
            out["diag"].append(code)
            if pd.notna(row["diagnostic_class"]):
                out["super"].append(str(row["diagnostic_class"]))
            if pd.notna(row["diagnostic_subclass"]):
                out["sub"].append(str(row["diagnostic_subclass"]))
        if row["form"] == 1:
            out["form"].append(code)
        if row["rhythm"] == 1:
            out["rhythm"].append(code)
    return {task: sorted(set(labels)) for task, labels in out.items()}


def strat_split(folds: pd.Series) -> pd.Series:
    folds = pd.to_numeric(folds, errors="coerce")
    out = pd.Series("", index=folds.index, dtype=object)
    out[folds.between(1, 8)] = "train"
    out[folds == 9] = "val"
    out[folds == 10] = "test"
    return out


def build_plan(root: Path, settings) -> Plan:
    database = pd.read_csv(root / "ptbxl_database.csv")
    statements = read_statements(root / "scp_statements.csv")
    classes = task_classes(statements)
    column = "filename_hr" if settings.prepare.ptbxl_rate == 500 else "filename_lr"
    if column not in database or "scp_codes" not in database or "ecg_id" not in database:
        raise DataLayoutError(
            f"{NAME}: {root / 'ptbxl_database.csv'} lacks ecg_id/scp_codes/{column} columns"
        )
    database = database.sort_values("ecg_id").reset_index(drop=True)
    labels = [record_labels(parse_scp_codes(text), statements) for text in database["scp_codes"]]
    frame = pd.DataFrame(
        {
            "id": database["ecg_id"].astype(int).astype(str),
            "path": [str(root / f"{name}.hea") for name in database[column]],
            "source": [f"{name}.hea" for name in database[column]],
            "patient_id": database["patient_id"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "strat_fold": database["strat_fold"].astype(int).astype(str),
        }
    )
    label_frames = []
    for task in TASKS:
        lists = pd.Series([row[task] for row in labels], index=frame.index)
        label_frames.append(one_hot(lists, classes[task], task))
    frame = pd.concat([frame, *label_frames], axis=1)

    strat = strat_split(database["strat_fold"])
    ids = database["ecg_id"].astype(int)
    for task in TASKS:
        has_label = frame[[f"{task}:{c}" for c in classes[task]]].to_numpy().any(axis=1)
        if settings.prepare.split == "melp" and task in MELP_TASKS:
            folder = MELP_TASKS[task]
            tables = {
                split: bundled_split_csv(f"ptbxl/{folder}/ptbxl_{folder}_{split}")["ecg_id"].astype(int)
                for split in ("train", "val", "test")
            }
            frame[f"split:{task}"] = split_from_tables(ids, tables).to_numpy()
        else:
            frame[f"split:{task}"] = np.where(has_label, strat.to_numpy(), "")
    frame["split"] = frame["split:super"] if settings.prepare.split == "melp" else strat.to_numpy()
    return Plan(
        dataset=NAME,
        root=root,
        records=frame,
        tasks=classes,
        default_task="super",
        info={
            "licence": LICENCE,
            "citation": CITATION,
            "split": settings.prepare.split,
            "rate": settings.prepare.ptbxl_rate,
        },
    )
