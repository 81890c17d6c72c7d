#!/usr/bin/env bash
# The GPU check of issue #15, as ONE command on a machine with a CUDA GPU and torch preinstalled:
#
#     OUT=/path/to/figures bash scripts/gpu_check.sh
#
# 1. pip install -e ".[test]" (nothing else: torch is the machine's own CUDA build);
# 2. the GPU tests: pytest -m gpu (CUDA vs CPU, bf16 autocast, checkpoints across devices, DDP on one GPU);
# 3. the GPU benchmark: benchmarks/pretrain.py --only-gpu (lvcg-base, batch 64, bf16 and fp32: bare
#    step, host-device syncs, the real loop's sustained samples/s, peak GPU memory, loss curves);
# 4. if time is left: the data pipeline on this machine's cores (benchmarks/dataloader.py) and a
#    profile of one CUDA step (benchmarks/profile_step.py).
#
# Every figure and log goes to $OUT (default ./gpu-check-out): summary.txt / summary.json (exit code
# and seconds of each part), machine.txt, pip.log, pytest-gpu.txt + .xml, pretrain_gpu.txt + .json,
# dataloader.txt + .json, profile_cuda.txt + .json. A failing part is recorded and the next one runs.
# The whole script stops starting parts after DEADLINE_S seconds (default 560: fits in 10 minutes on
# one H200; each part also has its own cap).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
DEADLINE_S="${DEADLINE_S:-560}"
mkdir -p "$OUT"
export LVCG_NO_PROGRESS=1 PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
declare -a PARTS=()

# run_part NAME CAP_S LOGFILE COMMAND... : run with a timeout of min(CAP_S, time left), record the outcome.
run_part() {
    local name="$1" cap="$2" log="$3"
    shift 3
    local left=$((DEADLINE_S - SECONDS))
    if ((left < 30)); then
        echo "$name: skipped (only ${left}s left of ${DEADLINE_S}s)" | tee -a "$SUMMARY"
        PARTS+=("\"$name\": {\"rc\": null, \"seconds\": 0, \"skipped\": true}")
        return
    fi
    local limit=$((cap < left ? cap : left))
    local start=$SECONDS
    echo "[$(date +%H:%M:%S)] $name (limit ${limit}s) -> $log" | tee -a "$SUMMARY"
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    local rc=$?
    local took=$((SECONDS - start))
    echo "$name: exit code $rc after ${took}s$([ "$rc" = 124 ] && echo ' (timed out)')" | tee -a "$SUMMARY"
    PARTS+=("\"$name\": {\"rc\": $rc, \"seconds\": $took}")
}

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    git rev-parse HEAD 2>/dev/null
    python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count(), *(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))'
    nvidia-smi 2>&1 | head -20
    echo "cpus: $(nproc)"
    free -g 2>/dev/null | head -2
} >"$OUT/machine.txt" 2>&1

# Short network timeouts: on a machine without a reachable index pip fails fast and the fallback runs.
PIP_DEFAULT_TIMEOUT=10 PIP_RETRIES=1 run_part install 150 "$OUT/pip.log" pip install --progress-bar off -e ".[test]"
if ! python -c "import lvcg_cli, pytest" >>"$OUT/pip.log" 2>&1; then
    # No package index reachable: the package alone, with whatever dependencies the machine has.
    run_part install-no-deps 60 "$OUT/pip-no-deps.log" pip install --no-deps --no-build-isolation -e .
fi

run_part gpu-tests 200 "$OUT/pytest-gpu.txt" \
    python -m pytest -m gpu -v -rA -p no:cacheprovider --junitxml "$OUT/pytest-gpu.xml"

run_part gpu-benchmark 260 "$OUT/pretrain_gpu.txt" \
    python benchmarks/pretrain.py --only-gpu --out "$OUT" --loop-steps 300 --gpu-steps 50

run_part dataloader 60 "$OUT/dataloader.txt" \
    python benchmarks/dataloader.py --workers 0,4,8,15 --samples 3000 --batches 100 --json "$OUT/dataloader.json"

run_part profile-cuda 60 "$OUT/profile_cuda.txt" \
    python benchmarks/profile_step.py --presets lvcg-base --batches 64 --device cuda --json "$OUT/profile_cuda.json"

(
    IFS=,
    echo "{${PARTS[*]}, \"total_seconds\": $SECONDS}"
) >"$OUT/summary.json"
echo "total ${SECONDS}s; figures in $OUT" | tee -a "$SUMMARY"
grep -hE "passed|failed|error" "$OUT/pytest-gpu.txt" 2>/dev/null | tail -1 | tee -a "$SUMMARY"
grep -hE "^(step|sync|loop|loss curves)" "$OUT/pretrain_gpu.txt" 2>/dev/null | tee -a "$SUMMARY"
grep -hE "^(per worker|loader|projection)" "$OUT/dataloader.txt" 2>/dev/null | tee -a "$SUMMARY"
