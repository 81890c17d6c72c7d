"""Label construction and splits of every release, on fixtures laid out like the real ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES

from lvcg_cli.datasets import ai_readi, chapman, cpsc2018, ludb, mimic, ptbxl
from lvcg_cli.datasets.registry import bundled_split_csv, hashed_split, open_record_split
from lvcg_cli.errors import DataLayoutError
from lvcg_cli.settings import resolve_settings

RELEASES = FIXTURES / "releases"


def _settings(**overrides):
    return resolve_settings(overrides={"prepare.ptbxl_rate": 100, **overrides})


def _row(plan, ident):
    return plan.records.set_index("id").loc[str(ident)]


# ------------------------------------------------------------------------------------ PTB-XL
def test_ptbxl_task_sizes_follow_the_statement_table():
    plan = ptbxl.build_plan(RELEASES / "ptbxl", _settings())
    assert {t: len(c) for t, c in plan.tasks.items()} == {
        "super": 5,
        "sub": 23,
        "form": 19,
        "rhythm": 12,
        "diag": 44,
        "all": 71,
    }
    assert plan.tasks["super"] == ["CD", "HYP", "MI", "NORM", "STTC"]


def test_ptbxl_likelihood_zero_still_counts():
    plan = ptbxl.build_plan(RELEASES / "ptbxl", _settings())
    # ecg 263: {'ASMI': 50.0, 'NST_': 0.0, 'STACH': 0.0}: STTC comes only from NST_ at likelihood 0.
    row = _row(plan, 263)
    assert row["super:MI"] == 1 and row["super:STTC"] == 1
    assert row[["super:NORM", "super:CD", "super:HYP"]].sum() == 0
    assert row["sub:NST_"] == 1 and row["sub:AMI"] == 1 and row["diag:ASMI"] == 1
    assert row["rhythm:STACH"] == 1 and row["all:STACH"] == 1 and "diag:STACH" not in row.index
    # ecg 1: {'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}
    row = _row(plan, 1)
    assert (
        row["super:NORM"] == 1 and row["form:LVOLT"] == 1 and row["rhythm:SR"] == 1 and row["diag:NORM"] == 1
    )
    assert "form:NORM" not in row.index and row["all:NORM"] == 1


def test_ptbxl_super_class_matches_a_direct_computation():
    plan = ptbxl.build_plan(RELEASES / "ptbxl", _settings())
    statements = pd.read_csv(RELEASES / "ptbxl" / "scp_statements.csv", index_col=0)
    database = pd.read_csv(RELEASES / "ptbxl" / "ptbxl_database.csv")
    for _, rec in database.iterrows():
        codes = eval(rec["scp_codes"], {})  # independent of the module's literal_eval path
        want = {
            statements.loc[c, "diagnostic_class"]
            for c in codes
            if c in statements.index
            and statements.loc[c, "diagnostic"] == 1
            and pd.notna(statements.loc[c, "diagnostic_class"])
        }
        row = _row(plan, rec["ecg_id"])
        assert {c for c in plan.tasks["super"] if row[f"super:{c}"]} == want


def test_ptbxl_melp_and_strat_fold_splits():
    melp = ptbxl.build_plan(RELEASES / "ptbxl", _settings())
    strat = ptbxl.build_plan(RELEASES / "ptbxl", _settings(**{"prepare.split": "strat_fold"}))
    folds = melp.records.set_index("id")["strat_fold"].astype(int)
    want = folds.map(lambda f: "train" if f <= 8 else "val" if f == 9 else "test")
    assert (strat.records.set_index("id")["split"] == want).all()
    # the MELP super-class partition of these records is the fold rule (records with a super label)
    assert (melp.records.set_index("id")["split"] == want).all()
    # form: only records with a form statement are in MELP's form files
    has_form = melp.records[[f"form:{c}" for c in melp.tasks["form"]]].to_numpy().any(axis=1)
    assert ((melp.records["split:form"] != "") == has_form).all()
    assert set(melp.records["split:form"]) - {""} <= {"train", "val", "test"}


def test_ptbxl_labels_equal_melp_one_hot_on_the_open_excerpt(shared_data):
    plan = ptbxl.build_plan(shared_data / "ptbxl", resolve_settings())
    records = plan.records.set_index(plan.records["id"].astype(int))
    for task, folder in ptbxl.MELP_TASKS.items():
        table = pd.concat(
            [bundled_split_csv(f"ptbxl/{folder}/ptbxl_{folder}_{s}") for s in ("train", "val", "test")]
        )
        table = table[table["ecg_id"].isin(records.index)].set_index("ecg_id")
        names = {c.strip("_"): c for c in plan.tasks[task]}  # MELP writes _AVB / ISC_ without underscores
        classes = list(table.columns[5:])
        ours = records.loc[table.index, [f"{task}:{names[c]}" for c in classes]].to_numpy()
        assert len(table) > 100
        np.testing.assert_array_equal(ours, table[classes].to_numpy())


def test_ptbxl_missing_rate_folder_says_which_flag_to_use():
    with pytest.raises(DataLayoutError, match="ptbxl_rate 100"):
        ptbxl.check_layout(RELEASES / "ptbxl", resolve_settings())


# ------------------------------------------------------------------------------------ others
def test_cpsc_original_reference_codes():
    plan = cpsc2018.build_plan(RELEASES / "cpsc2018", _settings())
    assert plan.info["form"] == "original"
    labels = {
        i: {c for c in cpsc2018.CLASSES if _row(plan, i)[f"dx:{c}"]} for i in ("A2600", "A4898", "A6729")
    }
    assert labels == {"A2600": {"CRBBB", "PAC"}, "A4898": {"NORM"}, "A6729": {"VPC", "STE", "1AVB"}}
    assert dict(zip(plan.records["id"], plan.records["split"], strict=True)) == {
        "A2600": "val",
        "A4898": "train",
        "A6729": "test",
    }


def test_cpsc_wfdb_copy_maps_snomed_codes():
    plan = cpsc2018.build_plan(RELEASES / "cpsc2018_wfdb", _settings())
    assert plan.info["form"] == "wfdb"
    assert {c for c in cpsc2018.CLASSES if _row(plan, "A4898")[f"dx:{c}"]} == {"AFIB", "CRBBB"}
    assert {c for c in cpsc2018.CLASSES if _row(plan, "A2600")[f"dx:{c}"]} == {"NORM"}


def test_chapman_melp_labels_and_snomed_acronyms():
    plan = chapman.build_plan(RELEASES / "chapman", _settings())
    assert dict(zip(plan.records["id"], plan.records["split"], strict=True)) == {
        "JS08246": "train",
        "JS18048": "test",
        "JS44279": "val",
    }
    melp = chapman.melp_tables()
    for ident in plan.records["id"]:
        for name in plan.tasks["melp"]:
            assert _row(plan, ident)[f"melp:{name}"] == melp.loc[ident, name]
    # JS20000's header (copied as JS08246): Dx 284470004,427084000,698252002,55930002
    dx = {c for c in plan.tasks["dx"] if _row(plan, "JS08246")[f"dx:{c}"]}
    assert dx == {"APB", "ST", "IDC"}  # 55930002 is not in the release's table: ignored
    assert "55930002" in plan.info["unknown_snomed_codes"]
    assert plan.tasks["lvcg"] == ["SR", "AFIB", "1AVB", "RBBB"]


def test_ludb_tasks_from_multiline_cells():
    plan = ludb.build_plan(RELEASES / "ludb", _settings())
    # axis is left-axis deviation vs every other recorded axis (record 2's axis is normal)
    assert plan.tasks["axis"] == ["LAD"]
    assert _row(plan, "1")["axis:LAD"] == 1 and _row(plan, "2")["axis:LAD"] == 0
    assert _row(plan, "2")["split:axis"] != ""  # a labelled negative, not an unlabelled record
    assert _row(plan, "8")["rhythm:other"] == 1 and _row(plan, "1")["rhythm:other"] == 0
    assert _row(plan, "1")[["hypertrophy:LVH", "hypertrophy:LVO"]].tolist() == [1, 1]
    assert _row(plan, "8")["split:axis"] == "" and _row(plan, "34")["split:axis"] == ""
    assert _row(plan, "1")["split:axis"] == _row(plan, "1")["split"] != ""
    # probe-test records are exactly the held-out part of the open-record split (never pretrained on)
    records = plan.records
    held_out = records["id"].astype(str).map(lambda i: open_record_split("ludb", i) == "test")
    assert (records.loc[held_out, "split"] == "test").all()
    assert (records.loc[~held_out, "split"].isin(["train", "val"])).all()


def test_ai_readi_person_labels_and_disjoint_split():
    plan = ai_readi.build_plan(RELEASES / "ai-readi", _settings())
    records = plan.records
    assert len(records) == 4
    by_person = records.groupby("person_id")
    assert (by_person["split"].nunique() == 1).all()  # every ECG of a person in one split
    first = records[records["person_id"] == "1001"].iloc[0]
    assert first["cardio_relevant:type2_diabetes"] == 1 and first["cardio_relevant:hypertension"] == 1
    assert first["cardio_relevant:heart_attack"] == 0
    second = records[records["person_id"] == "1002"].iloc[0]
    assert second["cardio_relevant:heart_attack"] == 1  # by keyword: concept id 0
    assert (
        records[records["person_id"] == "1003"]
        .iloc[0][[f"cardio_relevant:{c}" for c in ai_readi.CLASSES]]
        .sum()
        == 0
    )


def test_mimic_plan_from_record_list_and_from_walk(tmp_path):
    import shutil

    listed = mimic.build_plan(RELEASES / "mimic", _settings())
    copy = tmp_path / "mimic"
    shutil.copytree(RELEASES / "mimic", copy)
    (copy / "record_list.csv").unlink()
    walked = mimic.build_plan(copy, _settings())
    assert listed.records["source"].tolist() == walked.records["source"].tolist()
    assert listed.records["id"].tolist() == ["40689238", "41234567"]
    assert walked.records["subject_id"].tolist() == ["10000032", "10010058"]


def test_hashed_split_is_deterministic_and_order_free():
    keys = pd.Series([str(i) for i in range(400)])
    a = hashed_split(keys, salt="x")
    b = hashed_split(keys[::-1], salt="x").sort_index()
    assert (a == b).all()
    counts = a.value_counts(normalize=True)
    assert 0.6 < counts["train"] < 0.8 and 0.05 < counts["val"] < 0.16


def test_open_record_split_rule():
    assert [open_record_split("ptbxl", "00001", f) for f in (1, 8, 9, 10)] == [
        "train",
        "train",
        "test",
        "test",
    ]
    assert [open_record_split("ludb", i) for i in (1, 5, 10, 199)] == ["train", "test", "test", "train"]
    with pytest.raises(ValueError):
        open_record_split("mimic", "1")
