#!/bin/sh
# Side-by-side benchmark of our `bench` against an independent PyTorch model of the official
# code (bench/pytorch/swin_bench.py) on the same cases, the same machine, the same day.
#
# usage: scripts/bench-vs-pytorch.sh [--gpu] [--out DIR] [CASE ...]
#   CASE: a name of `bench --list` or ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]. Default:
#   the CPU cases (Swin-T b2 224: Mona train + infer, full/LoRA/Adapter train); with --gpu,
#   the GPU table of `bench --list` on cuda:0.
# env:
#   VENV     virtualenv holding torch (default .venv-bench in the repo root); created and
#            `pip install $TORCH_PIP` (default: torch) run there if torch is missing.
#   BENCH    our bench binary (default: build it with cargo; --gpu needs a CUDA build, see
#            scripts/setup-cuda-build.sh).
#   ROUNDS   rounds per case (3). Each round runs ours, then PyTorch's, each in a fresh
#            process with WARMUP untimed and STEPS timed iterations (CPU 3 and 6, GPU 3 and
#            10), so that machine drift hits both sides alike (A B A B ...).
#   THREADS  CPU threads of each side: torch.set_num_threads and RAYON_NUM_THREADS (2 on
#            the CPU; with --gpu each side's own default unless set).
#   OUT      where the raw JSON lines, logs and table go (target/bench-vs-pytorch/DATE).
# The table: per case the median over rounds of each side's mean step time, the speed ratio
# PyTorch ms / ours ms (> 1: ours is faster; median and range over rounds) and peak memory.
# If torch cannot be installed, it prints our numbers next to the hard-coded fallback
# numbers of `bench --list`, which are from another day, without a ratio.
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPU=0
CASES=""
ARGS=""
STARTED=$(date '+%Y-%m-%d %H:%M:%S %Z')
OUT=${OUT:-}
while [ $# -gt 0 ]; do
    case $1 in
        --gpu) GPU=1 ;;
        --out) [ $# -ge 2 ] || { usage >&2; exit 2; }; OUT=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) CASES="$CASES $1"; ARGS="$ARGS $1" ;;
    esac
    shift
done

VENV=${VENV:-$ROOT/.venv-bench}
ROUNDS=${ROUNDS:-3}
if [ "$GPU" = 1 ]; then
    THREADS=${THREADS:-}
else
    THREADS=${THREADS:-2}
fi
if [ "$GPU" = 1 ]; then
    DEVICE=cuda:0; TORCH_DEVICE=cuda:0; WARMUP=${WARMUP:-3}; STEPS=${STEPS:-10}
else
    DEVICE=flex; TORCH_DEVICE=cpu; WARMUP=${WARMUP:-3}; STEPS=${STEPS:-6}
fi
OUT=${OUT:-$ROOT/target/bench-vs-pytorch/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
RAW=$OUT/raw.jsonl
: > "$RAW"
PYBENCH=$ROOT/bench/pytorch/swin_bench.py
REPORT=$ROOT/bench/pytorch/report.py

# (a) torch in the virtualenv; TORCH=0 when it cannot be had.
TORCH=1
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the virtualenv $VENV" >&2
    python3 -m venv "$VENV" >&2 || TORCH=0
fi
if [ "$TORCH" = 1 ] && ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "installing ${TORCH_PIP:-torch} into $VENV" >&2
    # shellcheck disable=SC2086  # TORCH_PIP may hold several pip arguments
    "$VENV/bin/python" -m pip install ${TORCH_PIP:-torch} >&2 \
        && "$VENV/bin/python" -c 'import torch' || TORCH=0
fi
PY=python3
[ -x "$VENV/bin/python" ] && PY=$VENV/bin/python

# (b) our bench.
if [ -z "${BENCH:-}" ]; then
    if [ "$GPU" = 1 ]; then
        (cd "$ROOT" && CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000} \
            cargo build --release -p mona-tools --features cuda --bin bench) >&2
    else
        (cd "$ROOT" && cargo build --release -p mona-tools --bin bench) >&2
    fi
    BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/bench
fi
[ -x "$BENCH" ] || { echo "no bench binary at $BENCH" >&2; exit 1; }
"$BENCH" --list > "$OUT/list.jsonl"
if [ -z "$CASES" ]; then
    if [ "$GPU" = 1 ]; then
        CASES=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' "$OUT/list.jsonl" | grep -v '_cpu$')
    else
        CASES="swin_t_mona_train_b2_224_cpu swin_t_mona_infer_b2_224_cpu
            swin_t_full_train_b2_224_cpu swin_t_lora_train_b2_224_cpu
            swin_t_adapter_train_b2_224_cpu"
    fi
fi
if [ "$GPU" = 1 ]; then export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}; fi

# Other processes' CPU use while one side runs, in cores: all CPUs' busy time (/proc/stat)
# minus the side's own (the shell's `times` for its children), over the wall time. PyTorch's
# OpenMP threads slow down sharply when another process takes a core (rayon's much less), so
# the table shows it; null where /proc is missing.
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
busy_s() { awk -v hz="$HZ" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz; exit}' /proc/stat 2>/dev/null || echo 0; }
wall_s() { awk '{print $1}' /proc/uptime 2>/dev/null || echo 0; }
# The CPU seconds of this shell's finished children, from a `times` output file (`times`
# itself must run in this shell, not in a command substitution's subshell).
children_s() {
    awk 'NR==2{t=0; for(i=1;i<=2;i++){v=$i; sub(/s$/,"",v); n=split(v,a,"m"); t+=a[1]*60+a[n]} print t}' "$1"
}

# One process of one side; its JSON line goes to RAW with the round, the side and the other
# processes' CPU use, or a `failed` line if it fails. The logs keep stderr.
run_side() { # side round case command...
    side=$1; round=$2; case=$3; shift 3
    log=$OUT/logs/${side}_${case}_r$round.log
    echo "round $round/$ROUNDS  $side  $case" >&2
    times > "$OUT/.times"; c0=$(children_s "$OUT/.times"); b0=$(busy_s); w0=$(wall_s)
    if "$@" > "$log.out" 2> "$log"; then status=0; else status=$?; fi
    times > "$OUT/.times"; c1=$(children_s "$OUT/.times"); b1=$(busy_s); w1=$(wall_s)
    others=$(awk -v b0="$b0" -v b1="$b1" -v w0="$w0" -v w1="$w1" -v c0="$c0" -v c1="$c1" \
        'BEGIN { if (w1 - w0 <= 0 || b1 == 0) print "null"
                 else { o = ((b1 - b0) - (c1 - c0)) / (w1 - w0); printf "%.2f", o < 0 ? 0 : o } }')
    tag="\"round\":$round,\"side\":\"$side\",\"others_cpu_cores\":$others"
    if [ "$status" = 0 ]; then
        sed -n "/^{/s/^{/{$tag,/p" "$log.out" >> "$RAW"
    else
        echo "  $side failed (exit $status), see $log" >&2
        echo "{$tag,\"case\":\"$case\",\"failed\":true}" >> "$RAW"
    fi
    rm -f "$log.out" "$OUT/.times"
}

# (c) every case, ROUNDS times, ours and PyTorch's alternating.
for case in $CASES; do
    case $case in
        *:*) ours_case="--custom $case" ;;
        *) ours_case="--case $case" ;;
    esac
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        # shellcheck disable=SC2086  # ours_case and the thread settings are several words
        run_side ours "$r" "$case" env ${THREADS:+RAYON_NUM_THREADS=$THREADS} \
            "$BENCH" --device "$DEVICE" $ours_case --warmup "$WARMUP" --steps "$STEPS"
        if [ "$TORCH" = 1 ]; then
            # shellcheck disable=SC2086
            run_side pytorch "$r" "$case" "$VENV/bin/python" "$PYBENCH" --case "$case" \
                --device "$TORCH_DEVICE" ${THREADS:+--threads $THREADS} \
                --warmup "$WARMUP" --steps "$STEPS"
        fi
        r=$((r + 1))
    done
done

# (d) the table.
{
    echo "## ours vs PyTorch, $STARTED to $(date '+%H:%M:%S')"
    echo
    echo "- command: \`ROUNDS=$ROUNDS WARMUP=$WARMUP STEPS=$STEPS THREADS=$THREADS $0$( [ "$GPU" = 1 ] && echo ' --gpu')$ARGS\`"
    echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1), $(nproc 2>/dev/null || echo '?') cores; threads: ours RAYON_NUM_THREADS=${THREADS:-default}$( [ "$TORCH" = 1 ] && echo ", PyTorch torch.set_num_threads(${THREADS:-default})")"
    if [ "$GPU" = 1 ]; then
        echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    fi
    echo "- ours: $BENCH (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', uncommitted changes')), device $DEVICE"
    if [ "$TORCH" = 1 ]; then
        echo "- PyTorch: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), eager, bench/pytorch/swin_bench.py, device $TORCH_DEVICE"
    fi
    echo "- per process: $WARMUP warm-up + $STEPS timed iterations; ms = median over rounds of each process's mean; ratio = PyTorch ms / ours ms per round, median (range); > 1 means ours is faster"
    echo "- others' CPU: the most CPU (in cores) other processes used during any process of the row; above ~0.1 the row is suspect (PyTorch's OpenMP threads stall when a core is taken)"
    echo "- raw JSON lines: $RAW"
    echo
    if [ "$TORCH" = 1 ]; then
        "$PY" "$REPORT" compare "$RAW"
    else
        echo "**PyTorch could not be installed into $VENV: NO COMPARISON.** The PyTorch"
        echo "columns below are the hard-coded FALLBACK numbers of \`bench --list\`, measured on"
        echo "ANOTHER DAY (for the GPU rows on another machine); no ratio is given on purpose."
        echo
        if command -v "$PY" > /dev/null 2>&1; then
            "$PY" "$REPORT" fallback "$RAW" "$OUT/list.jsonl"
        else
            echo "(no python3 for the table; our raw lines and the fallback list follow)"
            cat "$RAW" "$OUT/list.jsonl"
        fi
    fi
} | tee "$OUT/table.md"
