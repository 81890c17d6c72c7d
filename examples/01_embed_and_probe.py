# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Embed PTB-XL records and probe them with a logistic regression
#
# **What it shows**: the bundled model embeds a folder of PTB-XL records through the public Python
# API (`lvcg_cli.load_model`, `model.embed`, `model.embedding_names`, `lvcg_cli.read_record`); a
# scikit-learn logistic regression on the embeddings predicts the five diagnostic super-classes
# (NORM, MI, STTC, CD, HYP) on PTB-XL's patient-disjoint folds (`strat_fold` 1-8 train, 9 to choose
# the regularisation, 10 test), and prints the test AUROC beside the same regression on 186
# handcrafted features.
#
# **Time**: about 20 s on a laptop CPU for the 1,332 records of `../shared/data/ptbxl` (16 s
# measured on a shared 2-core machine with `OMP_NUM_THREADS=1`, most of it embedding); the full
# PTB-XL release (21,799 records) takes about 16 times as long.
#
# **Run**: `python examples/01_embed_and_probe.py`, or as a notebook: `jupytext --to notebook
# examples/01_embed_and_probe.py` (this file is in jupytext's percent format). Settings come from
# the environment:
#
# - `LVCG_PTBXL`: a PTB-XL release folder (`ptbxl_database.csv`, `scp_statements.csv`,
#   `records100/`), from https://physionet.org/content/ptb-xl/1.0.3/ (CC BY 4.0). Default:
#   `$LVCG_SHARED_DATA/ptbxl`, where `LVCG_SHARED_DATA` defaults to `../shared/data` beside this
#   repository (an open excerpt of PTB-XL).
# - `LVCG_EXAMPLE_MAX_RECORDS`: embed only the first N records (0, the default: all of them).
#
# What the bundled weights were pretrained on is in `lvcg_cli/assets/weights/WEIGHTS.md` (without
# labels, and never on PTB-XL's test fold 10).

# %%
import ast
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lvcg_cli

# The handcrafted baseline is a library module (not the lvcg_cli API): the features that
# `lvcg probe --baselines` compares with (amplitude percentiles, band powers, RR statistics).
from lvcg_cli.downstream.features import handcrafted_features


# %%
def shared_data() -> Path:
    """$LVCG_SHARED_DATA, else ../shared/data beside this repository."""
    if "LVCG_SHARED_DATA" in os.environ:
        return Path(os.environ["LVCG_SHARED_DATA"])
    here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()  # script or notebook
    return here.parent.parent / "shared" / "data"


PTBXL = Path(os.environ.get("LVCG_PTBXL", shared_data() / "ptbxl"))
MAX_RECORDS = int(os.environ.get("LVCG_EXAMPLE_MAX_RECORDS", "0"))
if not (PTBXL / "ptbxl_database.csv").is_file():
    raise SystemExit(
        f"{PTBXL}: no ptbxl_database.csv here; download PTB-XL 1.0.3 from "
        "https://physionet.org/content/ptb-xl/1.0.3/ and set LVCG_PTBXL to its folder"
    )

# %% [markdown]
# ## Labels: the super-classes, as the PTB-XL benchmark builds them
# Every statement in `scp_codes` counts (a likelihood of 0 too); `scp_statements.csv` maps the
# diagnostic ones to their class. Records without a diagnostic statement are left out.

# %%
db = pd.read_csv(PTBXL / "ptbxl_database.csv", index_col="ecg_id")
statements = pd.read_csv(PTBXL / "scp_statements.csv", index_col=0)
superclass = statements["diagnostic_class"].dropna()  # statement -> NORM / MI / STTC / CD / HYP
CLASSES = sorted(superclass.unique())

db = db[[(PTBXL / f"{name}.hea").is_file() for name in db.filename_lr]]  # the records this folder has
if MAX_RECORDS:
    db = db.iloc[:MAX_RECORDS]
codes = db.scp_codes.map(ast.literal_eval)
labels = pd.DataFrame(
    [[int(any(superclass.get(code) == c for code in statement)) for c in CLASSES] for statement in codes],
    index=db.index,
    columns=CLASSES,
)
keep = labels.sum(axis=1) > 0
db, labels = db[keep], labels[keep]
print(f"{len(db)} records of {db.patient_id.nunique()} patients; positives per class:")
print(labels.sum().to_string())

# %% [markdown]
# ## Embed every record with the bundled model
# `read_record` gives the 12 leads in mV in canonical order; `model.embed` takes a batch of
# them, (N, 12, T) -> (N, D), through the same preprocessing and windows as `lvcg embed`.

# %%
model = lvcg_cli.load_model()  # the bundled lvcg-tiny weights; load_model("runs/x/final.pt") for yours
print(model)
records = [lvcg_cli.read_record(PTBXL / f"{name}.hea") for name in db.filename_lr]  # 100 Hz, 10 s
signals = np.stack([r.signal for r in records])  # (N, 12, 1000) mV
fs = records[0].fs
embeddings = np.concatenate([model.embed(signals[i : i + 256], fs=fs) for i in range(0, len(signals), 256)])
table = pd.DataFrame(embeddings, index=db.index, columns=model.embedding_names)
table.iloc[:3, [0, 1, -3, -2, -1]]

# %% [markdown]
# Every dimension has a name: `morph_*` (beat morphology tokens) and `dyn_*` (the GRU state)
# are learned; `rr_*` and the VCG measures (`qrs_vec_x`, `qrs_t_cos`, ...) are measured on the
# latent field. Probing each part on its own shows where the information sits.

# %%
learned = [n for n in model.embedding_names if n.startswith(("morph_", "dyn_"))]
measured = [n for n in model.embedding_names if n not in learned]

sos = butter(2, [0.67, 40.0], btype="band", fs=fs, output="sos")  # the band the model sees
features = handcrafted_features(sosfiltfilt(sos, signals, axis=-1), np.ones(signals.shape[:2], bool), fs)

representations = {
    f"lvcg embedding ({table.shape[1]})": table.to_numpy(),
    f"  learned: morph_*, dyn_* ({len(learned)})": table[learned].to_numpy(),
    f"  measured: rhythm, VCG ({len(measured)})": table[measured].to_numpy(),
    f"handcrafted features ({features.shape[1]})": features,
}

# %% [markdown]
# ## A logistic regression per class, C chosen on fold 9, AUROC on fold 10

# %%
folds = db.strat_fold.to_numpy()
train, val, test = folds <= 8, folds == 9, folds == 10


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC, or NaN when the split has only one label (a tiny run)."""
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def probe(x: np.ndarray) -> dict[str, float]:
    """Test AUROC per class of a standardised logistic regression, C picked by validation AUROC."""
    out = {}
    for c in CLASSES:
        y = labels[c].to_numpy()
        if not 0 < y[train].sum() < train.sum():
            out[c] = float("nan")
            continue
        fits = [
            make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000)).fit(x[train], y[train])
            for C in (0.001, 0.01, 0.1, 1.0)
        ]
        chosen = max(fits, key=lambda f: np.nan_to_num(auroc(y[val], f.predict_proba(x[val])[:, 1])))
        out[c] = auroc(y[test], chosen.predict_proba(x[test])[:, 1])
    return out


results = pd.DataFrame({name: probe(x) for name, x in representations.items()}).T
results["macro"] = results[CLASSES].mean(axis=1)  # over the classes with a defined AUROC
print(
    f"\ntest AUROC (fold 10: {test.sum()} records; train folds 1-8: {train.sum()}, validation fold 9: {val.sum()})"
)
print(results.to_string(float_format="{:.3f}".format, na_rep="-"))
