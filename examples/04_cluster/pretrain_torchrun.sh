#!/usr/bin/env bash
# One node's part of a multi-node `lvcg pretrain`: torchrun starts one process per GPU, the
# processes of every node meet at the rendezvous (c10d, on RDZV_ENDPOINT), and each `lvcg pretrain`
# joins that job instead of launching its own (it sees RANK, LOCAL_RANK and WORLD_SIZE; see
# lvcg_cli/engine/distributed.py). Gradients are averaged with NCCL on GPUs (gloo on CPUs).
#
# Time: what the pretraining takes; the launch itself is seconds. On one machine with two CPU
# processes and a few steps (the test suite's check of this file) about 10 s.
#
# Run the same line on every node (pretrain.sbatch does it with srun):
#   NNODES=2 RDZV_ENDPOINT=node001:29500 RUN_DIR=/shared/lvcg/runs/base-mimic \
#       DATA=/shared/lvcg/prepared/mimic bash examples/04_cluster/pretrain_torchrun.sh
# Arguments after the script go to `lvcg pretrain` (e.g. --train.batch_size 128 --train.ckpt_every 1000).
#
# Preemption: run the same line again. When RUN_DIR holds a checkpoint (ckpt-<step>.pt, written
# every --train.ckpt_every steps, or final.pt), the run continues from the newest one with
# `--resume`: model, optimiser, schedule, every rank's random state and the sampler position, so
# the curve goes on as if it had not stopped. A kill loses at most the steps since that checkpoint.
#
# Settings (environment):
#   RUN_DIR         required: the run folder, on a file system every node sees (rank 0 writes it,
#                   every rank reads the checkpoint it resumes from): config.yaml, metrics.jsonl
#                   (the loss curve), ckpt-<step>.pt (the newest --train.keep_checkpoints), best.pt
#                   (lowest validation loss), final.pt. Logs (rank 0's progress lines, errors) go
#                   to stderr: the job's log file.
#   DATA            a prepared data set: name (under LVCG_CACHE_DIR) or folder; a folder of
#                   --shard outputs is used whole (default: mimic)
#   PRESET          lvcg-base (default) or lvcg-tiny
#   STEPS           optimiser steps in all (default: 500000)
#   NNODES          nodes in the job (default: SLURM_NNODES, else 1)
#   NPROC_PER_NODE  processes per node (default: gpu = one per visible GPU)
#   RDZV_ENDPOINT   host:port every node can reach, e.g. the first node's (default: localhost:29500)
#   RDZV_ID         the same on every node of one job, another for the next (default: SLURM_JOB_ID)
set -euo pipefail

: "${RUN_DIR:?set RUN_DIR to the run folder (on a file system every node sees)}"
DATA="${DATA:-mimic}"
PRESET="${PRESET:-lvcg-base}"
STEPS="${STEPS:-500000}"
NNODES="${NNODES:-${SLURM_NNODES:-1}}"
NPROC_PER_NODE="${NPROC_PER_NODE:-gpu}"
RDZV_ENDPOINT="${RDZV_ENDPOINT:-localhost:29500}"
RDZV_ID="${RDZV_ID:-${SLURM_JOB_ID:-lvcg}}"

resume=()
if compgen -G "$RUN_DIR/ckpt-*.pt" >/dev/null || [[ -f "$RUN_DIR/final.pt" ]]; then
    resume=(--resume) # the newest checkpoint in RUN_DIR; every node sees the same folder, so decides the same
fi

exec torchrun \
    --nnodes "$NNODES" \
    --nproc-per-node "$NPROC_PER_NODE" \
    --rdzv-backend c10d \
    --rdzv-endpoint "$RDZV_ENDPOINT" \
    --rdzv-id "$RDZV_ID" \
    -m lvcg_cli pretrain \
    --preset "$PRESET" \
    --data "$DATA" \
    --max-steps "$STEPS" \
    --out "$RUN_DIR" \
    "${resume[@]}" \
    "$@"
