#!/usr/bin/env bash
# The GPU check, run on a GPU machine from binaries built elsewhere
# (scripts/gpu-pack.sh). Every step's timeout is cut to fit one budget
# (GPU_CHECK_BUDGET seconds, default 560: one device call is at most 600),
# keeping GPU_CHECK_PEERS_SECONDS (default 240) for the last step, the
# comparison with PyTorch (gpu-peers.py), which gets whatever is left.
#
#   mkdir -p /tmp/g && tar -xJf .gpu-carry/pack.tar.xz -C /tmp/g && /tmp/g/gpu-check.sh /tmp/g
#
# Writes its logs and JSON to $OUT (or /tmp/gpu-check-out): env.txt,
# gpu-tests.txt, cuda-tests.txt, memcheck.txt, bench.jsonl, lockstep.jsonl,
# compile.json, peers.jsonl, peers.md (9 files, what the device tool brings
# back).
# Without a GPU it fails cleanly; the peers step then says why it skipped.
# PEERS_PYTHON picks the Python that has torch (default python3);
# GPU_CHECK_PEERS_ARGS adds arguments to gpu-peers.py (a dry run on a CPU:
# GPU_CHECK_PEERS_ARGS='--device cpu --sizes 4099 --iters 3').
set -uo pipefail
D="${1:-$(cd "$(dirname "$0")" && pwd)}"
R="${OUT:-/tmp/gpu-check-out}"
mkdir -p "$R"
BUDGET="${GPU_CHECK_BUDGET:-560}"
PEERS_SECONDS="${GPU_CHECK_PEERS_SECONDS:-240}"
# cap WANT: WANT seconds, or fewer so that the peers step keeps its share.
cap() {
    local left=$((BUDGET - PEERS_SECONDS - SECONDS))
    [ "$left" -lt "$1" ] && echo $((left > 5 ? left : 5)) || echo "$1"
}
export ACTFORGE_REQUIRE_GPU=1 ACTFORGE_REQUIRE_NVRTC=1
export ACTFORGE_CACHE_DIR="$(mktemp -d)"
PEERS_WORK="$(mktemp -d)"
trap 'rm -rf "$ACTFORGE_CACHE_DIR" "$PEERS_WORK"' EXIT

# NVRTC on the GPU machine: the CUDA toolkit's or PyTorch's wheel.
for cand in /usr/local/cuda/lib64/libnvrtc.so.13 /usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13 \
    $(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia/cu13/lib/libnvrtc.so.13; do
    if [ -f "$cand" ]; then export ACTFORGE_NVRTC="$cand"; break; fi
done
# A --features cuda build links cuBLAS, cuRAND and NVRTC dynamically.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia/cu13/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
echo "NVRTC: ${ACTFORGE_NVRTC:-<default search>}" | tee "$R/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$R/env.txt"

status=0
step() { echo; echo "== $*"; }

# gpu-peers.py with what is left of the budget; a missing torch or CUDA
# device is a skip (exit 3), anything else that fails fails the check.
peers() {
    local py="${PEERS_PYTHON:-python3}" left=$((BUDGET - SECONDS - 10)) work="$PEERS_WORK" rc
    if ! "$py" -c 'import torch' >/dev/null 2>&1; then
        echo "peers: skipped: $py cannot import torch"
        return
    fi
    if [ "$left" -lt 60 ]; then
        echo "peers: skipped: ${left} s of the check's budget left"
        return
    fi
    local args=(--out "$work" --budget $((left - 30)))
    [ -x "$D/bin/actforge" ] && args+=(--actforge "$D/bin/actforge")
    # shellcheck disable=SC2086
    timeout "$left" "$py" "$D/gpu-peers.py" "${args[@]}" ${GPU_CHECK_PEERS_ARGS:-}
    rc=$?
    cp "$work/peers.jsonl" "$work/peers.md" "$R/" 2>/dev/null
    case $rc in
        0) cat "$R/peers.md" ;;
        3) echo "peers: skipped (the reason is above)" ;;
        124) echo "peers: killed at the check's budget"; status=1 ;;
        *) echo "peers: FAILED (exit $rc)"; [ -f "$R/peers.md" ] && cat "$R/peers.md"; status=1 ;;
    esac
}

step "GPU tests (all dtypes, odd lengths, misaligned views)"
timeout "$(cap 240)" "$D/bin/gpu-tests" --test-threads=1 --nocapture 2>&1 | tee "$R/gpu-tests.txt" || status=1

if [ -x "$D/bin/cuda-tests" ]; then
    step "candle op tests on CUDA"
    timeout "$(cap 180)" "$D/bin/cuda-tests" --test-threads=1 2>&1 | tee "$R/cuda-tests.txt" || status=1
fi

step "compute-sanitizer memcheck (odd lengths, misaligned views)"
if command -v compute-sanitizer >/dev/null 2>&1; then
    timeout "$(cap 240)" compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
        "$D/bin/gpu-tests" --test-threads=1 ptx_fallback 2>&1 | tail -30 | tee "$R/memcheck.txt" || status=1
else
    echo "compute-sanitizer not found: skipped" | tee "$R/memcheck.txt"
fi

step "bench: seeds and GELU, f32 and bf16, 16M elements"
QA='gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))'
T5='log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))'
: > "$R/bench.jsonl"
for dt in f32 bf16; do
    for f in "$QA" "$T5" 'gelu_like(x)'; do
        timeout "$(cap 60)" "$D/bin/actforge" bench "$f" --device cuda --elems 16777216 --dtype "$dt" --iters 20 --json >> "$R/bench.jsonl" || status=1
    done
done
step "bench: 64M elements (256 MB in f32)"
timeout "$(cap 60)" "$D/bin/actforge" bench 'gelu_like(x)' --device cuda --elems 67108864 --iters 10 --json >> "$R/bench.jsonl" || status=1
timeout "$(cap 60)" "$D/bin/actforge" bench "$QA" --device cuda --elems 67108864 --iters 10 --json >> "$R/bench.jsonl" || status=1
cat "$R/bench.jsonl"

step "lockstep: a training step of one model and of populations of 8 and 32, and a short search with and without --lockstep (gpt-micro, CUDA)"
# bench-step --population P times one model's step and a lockstep step of P
# members with P different formulas (one population kernel per direction),
# interleaved, and counts the ops (kernel launches) of each: compare
# population.step_ms_per_candidate with one_by_one_step_ms, and
# population.ops_ratio with the README's prediction. Needs a --features
# cuda build (scripts/gpu-pack.sh --features cuda); otherwise it says so.
: > "$R/lockstep.jsonl"
for p in 8 32; do
    timeout "$(cap 90)" "$D/bin/actforge" bench-step --task qa --preset gpt-micro --device cuda --variant fused \
        --population "$p" --iters 10 --warmup 3 --json >> "$R/lockstep.jsonl" || status=1
done
# A short search one by one and with --lockstep (populations of a whole
# batch, the GPU's default), same seed: one line each into lockstep.jsonl,
# {"search", "seconds", "trained"} (candidate-seeds trained); compare
# trained/seconds, and the two runs' hall_of_fame.json (printed).
for mode in no-lockstep lockstep; do
    d="$PEERS_WORK/search-$mode"
    t0=$(date +%s.%N)
    timeout "$(cap 150)" "$D/bin/actforge" search --task qa --device cuda --preset gpt-micro --steps 100 \
        --pop 8 --gens 1 --seed 3 --max-seeds 2 --retrain-top 0 --no-export --quiet "--$mode" --out "$d" \
        > /dev/null || status=1
    t1=$(date +%s.%N)
    n=$(grep -c '"seeds":\[[0-9]' "$d/evaluations.jsonl" 2>/dev/null || echo 0)
    echo "{\"search\": \"--$mode\", \"seconds\": $(awk "BEGIN {print $t1 - $t0}"), \"trained\": $n}" >> "$R/lockstep.jsonl"
    grep -o '"formula": *"[^"]*"' "$d/hall_of_fame.json" 2>/dev/null | head -4
done
cat "$R/lockstep.jsonl"

step "NVRTC compile times on this machine"
timeout "$(cap 120)" "$D/bin/actforge" bench-compile --arch sm_90 --json | tee "$R/compile.json" || status=1

step "peers: actforge's exported kernels vs PyTorch eager, torch.compile, F.gelu and a copy"
peers
echo
echo "gpu-check: $([ $status = 0 ] && echo PASS || echo FAIL) ($SECONDS s)"
exit $status
