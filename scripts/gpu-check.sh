#!/bin/sh
# Runs the GPU checks of a CUDA build on a machine with an NVIDIA GPU and writes JSON lines:
#   1. the golden fixture parity check on the GPU (`bench --fixtures DIR`), if DIR is given;
#   2. the NCCL all-reduce of `train --gpus N` over every visible GPU (`bench
#      --all-reduce-check N`; with one GPU it checks that NCCL loads and runs);
#   3. every `bench` case on cuda:0, each in its own process with a time limit, while
#      nvidia-smi samples the process memory (the CUDA context included) every 100 ms.
#
# usage: scripts/gpu-check.sh BENCH_BINARY OUT_DIR [FIXTURES_DIR]
# env:   FIX_TIMEOUT (s, default 240), CASE_TIMEOUT (s, default 150), WARMUP (3), STEPS (10),
#        CASES (default: all GPU cases, in `bench --list` order), BUDGET (s, default unlimited):
#        no new case starts once BUDGET seconds have passed since the script began, so a
#        lent machine's time limit ends the run between cases, not inside one. Skipped cases
#        are written to bench.log.
# Autotuning (on in the `cuda` build) benchmarks each kernel once per shape; its results are
# kept in cubecl's on-disk cache, so the first case pays most of it.
# Build: scripts/setup-cuda-build.sh once, then
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p mona-tools --features cuda --bin bench
set -u
BENCH=$1; OUT=$2; FIXDIR=${3:-}
START=$(date +%s)
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.csv" 2>&1
if [ -n "$FIXDIR" ]; then
    timeout "${FIX_TIMEOUT:-240}" "$BENCH" --device cuda:0 --fixtures "$FIXDIR" \
        > "$OUT/fixtures.txt" 2>&1
    echo "fixture check exit $?" >> "$OUT/fixtures.txt"
fi
NGPU=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l)
timeout 120 "$BENCH" --device cuda:0 --all-reduce-check "${NGPU:-1}" --steps 5 \
    > "$OUT/all_reduce.jsonl" 2> "$OUT/all_reduce.log"
echo "all-reduce check exit $?" >> "$OUT/all_reduce.log"
CASES=${CASES:-$("$BENCH" --list | sed -n 's/.*"name":"\([^"]*\)".*/\1/p' | grep -v _cpu)}
for case in $CASES; do
    if [ -n "${BUDGET:-}" ] && [ $(( $(date +%s) - START )) -ge "$BUDGET" ]; then
        echo "$case skipped: budget of ${BUDGET} s spent" >> "$OUT/bench.log"
        continue
    fi
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 100 \
        > "$OUT/smi_$case.csv" 2>/dev/null &
    SMI=$!
    timeout "${CASE_TIMEOUT:-150}" "$BENCH" --device cuda:0 --case "$case" \
        --warmup "${WARMUP:-3}" --steps "${STEPS:-10}" >> "$OUT/bench.jsonl" 2>> "$OUT/bench.log"
    echo "$case exit $?" >> "$OUT/bench.log"
    kill $SMI 2>/dev/null
    peak=$(awk -F', ' '{ if ($2 > m) m = $2 } END { print m + 0 }' "$OUT/smi_$case.csv")
    echo "{\"case\":\"$case\",\"nvidia_smi_peak_mib\":$peak}" >> "$OUT/smi_peaks.jsonl"
done
