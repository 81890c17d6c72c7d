#!/usr/bin/env bash
# Your own data, end to end: prepare a folder of records, pretrain a small model on it, then probe
# and embed with the new checkpoint -- the `lvcg` command line only.
#
# What it shows: the four commands a new data set goes through, what each one leaves on disk, and
# how to tell whether pretraining learned anything: the probe table compares the new checkpoint with
# the same architecture at random initialisation and with handcrafted features. It ends with
# WORK/embeddings.npz (one named vector per record, keyed by record id).
#
# Time: about 2.5 minutes on a laptop CPU with the defaults (STEPS=500 on the 333 PTB-XL records of
# ../shared/data; 141 s measured on a shared 2-core machine with OMP_NUM_THREADS=1: 2 min
# pretraining, 20 s preparing, probing and embedding). Pretraining scales with STEPS, the rest with
# the number of records.
#
# Run:   bash examples/03_own_data.sh [RECORDS_FOLDER]
#   RECORDS_FOLDER  any tree of records: WFDB (.hea), CPSC .mat, DICOM, GE MUSE / HL7 aECG / Philips
#                   XML, SCP-ECG, EDF, mixed freely. Default: $LVCG_SHARED_DATA/ptbxl/records500
#                   (LVCG_SHARED_DATA defaults to ../shared/data beside this repository), else the
#                   records bundled with lvcg (six files, enough to see every step run).
# Settings (environment variables):
#   WORK=lvcg-own-data  where everything goes: prepared/ (the packed cache), runs/ (pretraining and
#                       probe runs), embeddings.npz
#   STEPS=500           optimiser steps of pretraining (as `lvcg pretrain` with no arguments)
#   BATCH=16            records per step; at most the number of training records (4 for the
#                       bundled records)
#   PROBE_ARGS          what to probe on. Default: the electrical axis of LUDB (133 labelled records,
#                       5-fold cross-validation), prepared from $LVCG_SHARED_DATA/ludb, else the
#                       built-in simulated set (--dataset sim). E.g. PROBE_ARGS="--dataset ptbxl
#                       --ratio 0.1" once `lvcg prepare-data ptbxl --root ...` has prepared PTB-XL.
#   LVCG_CACHE_DIR      where lvcg keeps built-in data sets and probe embeddings (default: the user cache)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${LVCG_SHARED_DATA:-$here/../../shared/data}"
if [[ $# -ge 1 ]]; then
    records="$1"
elif [[ -d "$shared/ptbxl/records500" ]]; then
    records="$shared/ptbxl/records500"
else
    records="$(python -c 'import lvcg_cli, pathlib; print(pathlib.Path(lvcg_cli.__file__).parent / "assets" / "records")')"
    BATCH="${BATCH:-4}" # six records: five to train on, one for the validation loss
fi
WORK="${WORK:-lvcg-own-data}"
STEPS="${STEPS:-500}"
BATCH="${BATCH:-16}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)" # absolute: a bare name such as "prepared" would be read as a data set name

# 1. Prepare: read every record (format by content), repair short NaN gaps, resample to 100 Hz,
#    band-pass 0.67-40 Hz, cut 10-s windows and pack them as float16 mV into one memory-mapped
#    cache with a manifest. Unreadable files are skipped and listed in prepared/skipped.tsv.
#    Running the script again reuses a finished cache made from the same folder and settings.
echo "== 1. prepare-data folder --root $records"
lvcg prepare-data folder --root "$records" --out "$WORK/prepared"

# 2. Pretrain lvcg-tiny on it. A run folder of its own under runs/ holds config.yaml,
#    metrics.jsonl (the loss curve), ckpt-<step>.pt, best.pt (lowest validation loss) and final.pt;
#    the final checkpoint's path is the one line on stdout. A part of the records (--data.val_fraction)
#    is held out for the validation loss. Interrupted? `lvcg pretrain --resume RUN_FOLDER` continues.
echo "== 2. pretrain: $STEPS steps of $BATCH records"
checkpoint="$(lvcg pretrain --data "$WORK/prepared" --max-steps "$STEPS" --train.batch_size "$BATCH" \
    --run.runs_dir "$WORK/runs")"
echo "checkpoint: $checkpoint"

# 3. Probe: freeze the new encoder, fit logistic regressions on a labelled data set, report test
#    AUROC. --baselines adds the same architecture at random initialisation (what pretraining must
#    beat) and handcrafted features. The labelled set is another data set than the one pretrained on.
if [[ -n "${PROBE_ARGS:-}" ]]; then
    read -ra probe_args <<<"$PROBE_ARGS"
elif [[ -d "$shared/ludb" ]]; then
    lvcg prepare-data ludb --root "$shared/ludb" --out "$WORK/ludb"
    probe_args=(--dataset "$WORK/ludb" --task axis --cv 5)
else
    probe_args=(--dataset sim)
fi
echo "== 3. probe ${probe_args[*]}"
lvcg probe --checkpoint "$checkpoint" "${probe_args[@]}" --baselines --run.runs_dir "$WORK/runs"

# 4. Embed: one vector per record with the new checkpoint. .npz keeps the record ids and the name
#    of every dimension; -o embeddings.parquet writes a table instead (needs pyarrow).
echo "== 4. embed $records"
lvcg embed "$records" --checkpoint "$checkpoint" -o "$WORK/embeddings.npz"
python - "$WORK/embeddings.npz" <<'PY'
import sys

import numpy as np

saved = np.load(sys.argv[1])
ids, names, vectors = saved["ids"], saved["names"], saved["embeddings"]
print(f"{sys.argv[1]}: {vectors.shape[0]} records x {vectors.shape[1]} dimensions")
print(f"  ids {', '.join(ids[:3])} ...; dimensions {', '.join(names[:2])} ... {', '.join(names[-2:])}")
PY
