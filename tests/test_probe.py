"""``lvcg probe``: subset semantics, the protocol's numbers, the CSV, skipped data sets, baselines."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_embed import invoke

from lvcg_cli.downstream.metrics import classification_scores, per_class_f1, tune_thresholds
from lvcg_cli.downstream.probe import label_subset, probe_once
from lvcg_cli.downstream.probe_results import RESULT_COLUMNS, summarise

pytest_plugins = ["test_embed"]  # tiny_checkpoint


def write_toy_cache(folder: Path, n: int = 90, seed: int = 0, with_val: bool = True) -> Path:
    """A prepared data set in the packed-cache format: simulated 100-Hz windows, tasks cond (afib, lad)."""
    from lvcg_cli.datasets.simulator import simulate
    from lvcg_cli.settings import DataSettings
    from lvcg_cli.signals.preprocess import bandpass

    data = DataSettings()
    sim = simulate(n, seed=seed, fs=100.0, duration_s=10.0)
    signals = bandpass(sim.signals, 100.0, tuple(data.bandpass)).astype(np.float16)
    names = list(sim.label_names)
    afib, lad = sim.labels[:, names.index("afib")], sim.labels[:, names.index("lad")]
    split = np.array(["train"] * n, dtype=object)
    split[int(0.6 * n) : int(0.8 * n)] = "val" if with_val else "train"
    split[int(0.8 * n) :] = "test"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "signals.npy", signals)
    pd.DataFrame(
        {
            "id": [f"toy{i:03d}" for i in range(n)],
            "source": "sim",
            "split": split,
            "flags": "",
            "present": "1" * 12,
            "cond:afib": afib.astype(np.int8),
            "cond:lad": lad.astype(np.int8),
        }
    ).to_csv(folder / "manifest.csv", index=False)
    meta = {
        "format": "lvcg-cache/1",
        "dataset": "toy",
        "fs": 100.0,
        "n_samples": 1000,
        "n": n,
        "tasks": {"cond": ["afib", "lad"]},
        "default_task": "cond",
        "preprocessing": {"fs": 100.0, "window_s": 10.0},
        "complete": True,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_cache(tmp_path_factory.mktemp("toy") / "toy")


# --------------------------------------------------------------------------------------------
# label subset semantics
# --------------------------------------------------------------------------------------------
def test_ratio_uses_ceil_of_ratio_times_n_and_the_seed_fixes_the_subset():
    rng = np.random.default_rng(0)
    y = (rng.random((1000, 3)) < 0.3).astype(np.int8)
    a = label_subset(y, 0.1, seed=42)
    assert a.size == 100 == math.ceil(0.1 * 1000)
    assert np.array_equal(a, label_subset(y, 0.1, seed=42))
    b = label_subset(y, 0.1, seed=43)
    assert not np.array_equal(np.sort(a), np.sort(b))
    assert label_subset(y, 0.013, seed=1).size == math.ceil(0.013 * 1000)
    assert np.array_equal(np.sort(label_subset(y, 1.0, seed=5)), np.arange(1000))


def test_rare_classes_get_a_positive_where_the_training_split_has_one():
    y = np.zeros((200, 2), dtype=np.int8)
    y[:, 0] = np.arange(200) % 2
    y[7, 1] = 1  # one positive of class 1 in the whole training split
    subset = label_subset(y, 0.02, seed=3)
    assert y[subset, 1].sum() == 1 and 7 in subset
    assert subset.size == math.ceil(0.02 * 200) + (0 if 7 in label_subset(y, 0.02, 3)[:4] else 1)
    assert len(set(subset.tolist())) == subset.size


# --------------------------------------------------------------------------------------------
# the protocol on known features
# --------------------------------------------------------------------------------------------
def _separable(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.4).astype(np.int8)
    x = rng.standard_normal((n, 5))
    x[:, 0] += 3.0 * y[:, 0]
    x[:, 1] += 0.7 * y[:, 1]
    splits = {"train": np.arange(0, 180), "val": np.arange(180, 240), "test": np.arange(240, n)}
    return x, y, splits


def test_probe_numbers_match_sklearn_and_the_same_seed_gives_the_same_numbers():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    x, y, splits = _separable()
    kwargs = {"ratio": 0.5, "c_grid": [0.01, 1.0], "max_iter": 500}
    first = probe_once(x, y, ["a", "b"], splits, seed=7, **kwargs)
    again = probe_once(x, y, ["a", "b"], splits, seed=7, **kwargs)
    other = probe_once(x, y, ["a", "b"], splits, seed=8, **kwargs)
    arrays = ("subset", "test_scores")
    assert {k: v for k, v in first.items() if k not in arrays} == {
        k: v for k, v in again.items() if k not in arrays
    }
    np.testing.assert_array_equal(first["test_scores"], again["test_scores"])
    assert not np.array_equal(np.sort(first["subset"]), np.sort(other["subset"]))
    assert first["n_train"] == 90

    # independent recomputation with scikit-learn at the chosen C
    sub = first["subset"]
    scaler = StandardScaler().fit(x[sub])
    per_class = []
    for k in range(2):
        clf = LogisticRegression(C=first["best_c"], max_iter=500).fit(scaler.transform(x[sub]), y[sub, k])
        scores = clf.predict_proba(scaler.transform(x[splits["test"]]))[:, 1]
        per_class.append(roc_auc_score(y[splits["test"], k], scores))
    got = json.loads(first["per_class_auroc"])
    assert got["a"] == pytest.approx(per_class[0], abs=1e-4)
    assert got["b"] == pytest.approx(per_class[1], abs=1e-4)
    assert first["macro_auroc"] == pytest.approx(np.mean(per_class), abs=1e-4)
    assert got["a"] > 0.95  # the strongly separated class


def test_classes_without_test_positives_are_excluded_and_reported():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.1], [0.3, 0.9]])
    result = classification_scores(["a", "b"], y, scores, np.array([0.5, 0.5]))
    assert result.excluded == ["b (0 positives of 4)"]
    assert result.macro_auroc == 1.0 and np.isnan(result.auroc[1])


def test_classes_with_too_few_test_positives_leave_the_macro():
    rng = np.random.default_rng(0)
    y = np.zeros((100, 3), dtype=np.int8)
    y[:30, 0] = 1  # 30 positives
    y[:4, 1] = 1  # 4 positives: below 5
    y[50:60, 2] = 1  # 10 positives
    scores = rng.random((100, 3)) + 0.5 * y
    full = classification_scores(["a", "b", "c"], y, scores, np.full(3, 0.5))
    cut = classification_scores(["a", "b", "c"], y, scores, np.full(3, 0.5), min_positives=5)
    assert np.isfinite(full.auroc).all() and cut.excluded == ["b (4 positives of 100)"]
    assert np.isnan(cut.auroc[1]) and cut.macro_auroc == pytest.approx(np.mean(full.auroc[[0, 2]]))


def test_thresholds_tuned_on_validation_maximise_f1():
    y = np.array([[0], [0], [1], [1], [1]])
    s = np.array([[0.1], [0.35], [0.3], [0.6], [0.9]])
    t = tune_thresholds(y, s)
    best = max(per_class_f1(y, s, np.array([c]))[0] for c in s[:, 0])
    assert per_class_f1(y, s, t)[0] == pytest.approx(best)


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [
        {"seed": 1, "macro_auroc": 0.8, "macro_auprc": 0.5, "macro_f1": 0.4},
        {"seed": 2, "macro_auroc": 0.9, "macro_auprc": 0.7, "macro_f1": 0.6},
    ]
    s = summarise(rows)
    assert s["macro_auroc_mean"] == pytest.approx(0.85)
    assert s["macro_auroc_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
def test_probe_features_on_a_prepared_set_writes_csv_and_json(toy, tmp_path):
    out = tmp_path / "run"
    code, result, _ = invoke(
        [
            "probe",
            "--dataset",
            toy,
            "--model",
            "features",
            "--ratio",
            "0.5",
            "--seed",
            "1",
            "--seed",
            "2",
            "--out",
            out,
            "--json",
            "--probe.min_positives",
            "1",
        ]
    )
    assert code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["seed"] for r in payload["rows"]] == [1, 2]
    assert payload["summaries"][0]["n_seeds"] == 2
    table = pd.read_csv(out / "probing_results.csv")
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert len(table) == 2 and set(table["model"]) == {"features"}
    assert (
        table["n_train"].iloc[0] == math.ceil(0.5 * 54) or table["n_train"].iloc[0] <= math.ceil(0.5 * 54) + 4
    )
    assert (table["macro_auroc"] > 0.5).all()
    per_class = json.loads(table["per_class_auroc"].iloc[0])
    assert set(per_class) == {"afib", "lad"}
    assert (out / "config.yaml").is_file()
    assert "macro AUROC" not in result.output  # with --json the results are JSON only


@pytest.mark.slow
def test_probe_prints_its_results_table_on_stdout(toy, tmp_path):
    """``lvcg probe > results.txt`` holds the table; logs and progress stay on stderr."""
    out, err = tmp_path / "results.txt", tmp_path / "log.txt"
    args = ["probe", "--dataset", str(toy), "--model", "features", "--out", str(tmp_path / "run")]
    args += ["--probe.min_positives", "1"]  # the toy set has few test positives per class
    with open(out, "w") as stdout, open(err, "w") as stderr:
        env = {**os.environ, "COLUMNS": "60"}  # a width inherited from a login shell does not apply to a file
        proc = subprocess.run(
            [sys.executable, "-m", "lvcg_cli", *args], stdout=stdout, stderr=stderr, env=env, timeout=240
        )
    assert proc.returncode == 0, err.read_text()
    text = out.read_text()
    row = pd.read_csv(tmp_path / "run" / "probing_results.csv").iloc[0]
    header = next(line for line in text.splitlines() if "macro AUROC" in line)
    for column in ("data set", "task", "model", "n_train", "macro AUROC", "macro AUPRC", "macro F1"):
        assert column in header
    cells = next(line for line in text.splitlines() if "features" in line).replace("│", " ").split()
    assert f"{row['macro_auroc']:.3f}" in cells and f"{row['macro_f1']:.3f}" in cells
    assert str(row["n_train"]) in cells
    assert "macro AUROC" not in err.read_text() and "results appended to" in err.read_text()


def test_probe_lvcg_and_baselines_rows_and_embedding_cache(toy, tmp_path, tiny_checkpoint):
    csv = tmp_path / "all.csv"
    args = ["probe", "--dataset", toy, "--checkpoint", tiny_checkpoint, "--baselines", "--csv", csv, "--json"]
    args += ["--probe.min_positives", "1"]
    code, result, _ = invoke(args)
    assert code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["model"] for r in rows] == ["lvcg", "random-init", "features"]
    assert rows[0]["checkpoint_sha256"] and rows[1]["checkpoint_sha256"] == rows[0]["checkpoint_sha256"]
    code, again, _ = invoke(args)
    assert "embeddings from the cache" in again.stderr
    first, second = json.loads(result.stdout)["rows"], json.loads(again.stdout)["rows"]
    for a, b in zip(first, second, strict=True):
        assert a["macro_auroc"] == b["macro_auroc"] and a["per_class_auroc"] == b["per_class_auroc"]
    assert len(pd.read_csv(csv)) == 6


def test_missing_validation_split_is_carved_from_train(tmp_path):
    toy = write_toy_cache(tmp_path / "noval", n=60, with_val=False)
    code, result, _ = invoke(
        ["probe", "--dataset", toy, "--model", "features", "--out", tmp_path / "r", "--json"]
    )
    assert code == 0, result.output
    row = json.loads(result.stdout)["rows"][0]
    assert row["n_val"] == round(0.2 * 48) and row["n_train"] == 48 - row["n_val"]


def test_unprepared_dataset_is_one_line_with_the_prepare_command(tmp_path):
    code, _, message = invoke(
        ["probe", "--dataset", "ptbxl", "--ratio", "0.1", "--model", "features", "--out", tmp_path]
    )
    assert code == 2
    assert message == "ptbxl: not prepared yet (run `lvcg prepare-data ptbxl --root /path/to/ptb-xl-1.0.3`)"


def test_all_lists_unprepared_datasets_as_skipped(tmp_path, monkeypatch):
    from lvcg_cli.downstream import probe as probe_mod

    monkeypatch.setattr(
        probe_mod,
        "PROBE_TABLE",
        (probe_mod.ProbeEntry("ptbxl", "super"), probe_mod.ProbeEntry("ludb", "axis")),
    )
    code, result, _ = invoke(["probe", "--all", "--model", "features", "--out", tmp_path, "--json"])
    assert code == 0, result.output
    skipped = json.loads(result.stdout)["skipped"]
    assert [s["dataset"] for s in skipped] == ["ptbxl", "ludb"]
    assert "lvcg prepare-data ludb" in skipped[1]["reason"]
    assert "skipped" in result.stderr


@pytest.mark.slow
def test_two_probes_appending_at_once_keep_the_csv_whole(toy, tmp_path):
    csv = tmp_path / "shared.csv"
    cmd = [
        sys.executable,
        "-m",
        "lvcg_cli",
        "probe",
        "--dataset",
        str(toy),
        "--model",
        "features",
        "-q",
        "--csv",
        str(csv),
        "--probe.min_positives",
        "1",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, "--seed", str(s), "--seed", str(s + 10), "--out", str(tmp_path / f"r{s}")],
            stderr=subprocess.PIPE,
        )
        for s in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    text = csv.read_text()
    assert text.count("timestamp,checkpoint") == 1
    table = pd.read_csv(csv)
    assert sorted(table["seed"]) == [1, 2, 11, 12]
    assert table["macro_auroc"].notna().all()


# --------------------------------------------------------------------------------------------
# cross-validation and intervals
# --------------------------------------------------------------------------------------------
def test_cv_folds_partition_the_rows_and_stratify_each_class():
    from lvcg_cli.downstream.probe import cv_folds

    rng = np.random.default_rng(1)
    y = np.zeros((133, 1), dtype=np.int8)
    y[rng.permutation(133)[:17]] = 1  # like LUDB left-axis deviation: 17 of 133
    folds = cv_folds(y, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(133))
    assert all(3 <= int(y[f].sum()) <= 4 for f in folds)  # 17 positives dealt 4, 4, 3, 3, 3
    assert [f.tolist() for f in folds] == [f.tolist() for f in cv_folds(y, 5, seed=3)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in cv_folds(y, 5, seed=4)]


def test_probe_cv_scores_every_record_out_of_fold_with_an_interval():
    from lvcg_cli.downstream.probe import probe_cv

    x, y, _ = _separable(200)
    rows = np.arange(200)
    kwargs = {"folds": 5, "repeats": 3, "seed": 0, "c_grid": [0.1, 1.0], "max_iter": 500}
    got = probe_cv(x, y, ["a", "b"], rows, **kwargs)
    assert got["n_test"] == 200 and got["cv"] == "5x3" and got["test_scores"].shape == (200, 2)
    per_class = json.loads(got["per_class_auroc"])
    assert per_class["a"] > 0.95 > per_class["b"] > 0.55  # strong vs weak signal
    assert got["macro_auroc_ci_low"] < got["macro_auroc"] < got["macro_auroc_ci_high"]
    # the pooled score is the AUROC of the repeat-averaged out-of-fold scores
    from sklearn.metrics import roc_auc_score

    assert per_class["a"] == pytest.approx(roc_auc_score(y[:, 0], got["test_scores"][:, 0]), abs=1e-6)
    np.testing.assert_array_equal(
        got["test_scores"], probe_cv(x, y, ["a", "b"], rows, **kwargs)["test_scores"]
    )


def test_bootstrap_intervals_cover_their_estimate_and_shrink_with_data():
    from lvcg_cli.downstream.metrics import bootstrap_macro_auroc, bootstrap_mean

    rng = np.random.default_rng(0)
    small, large = rng.normal(0.5, 1.0, 50), rng.normal(0.5, 1.0, 5000)
    a, b = bootstrap_mean(small), bootstrap_mean(large)
    assert a.low < a.value < a.high and b.low < b.value < b.high
    assert (b.high - b.low) < 0.2 * (a.high - a.low)  # ~ 1/sqrt(100) narrower
    assert abs(b.value - 0.5) < 0.1 and f"{b:+}".startswith("+0.")
    y = (rng.random((300, 2)) < 0.3).astype(np.int8)
    s = y + rng.normal(0, 1.0, (300, 2))
    low, high = bootstrap_macro_auroc(y, s, n_boot=500)
    from sklearn.metrics import roc_auc_score

    point = np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(2)])
    assert low < point < high and high - low < 0.15
