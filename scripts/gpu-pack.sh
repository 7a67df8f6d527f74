#!/usr/bin/env bash
# Build the GPU-check binaries on this (CPU-only) machine and pack them for a
# GPU machine that has no crate registry: writes .gpu-carry/pack.tar.xz
# (git-ignored; send it with the device tool's `carry`), holding
#   bin/actforge, bin/gpu-tests (tests/gpu.rs), bin/cuda-tests (candle op
#   tests, when built with --features cuda), gpu-check.sh, gpu-peers.py
# Usage: scripts/gpu-pack.sh [--features cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURES=("$@")
if [[ " $* " == *" cuda "* || " $* " == *"--features cuda"* ]]; then
    # Same environment and target dir as scripts/build-cuda.sh.
    scripts/install-cuda-tools.sh --full
    scripts/make-libcuda-stub.sh
    # shellcheck source=cuda-env.sh
    source scripts/cuda-env.sh
fi
TARGET="${CARGO_TARGET_DIR:-target}"
OUT=.gpu-carry
rm -rf "$OUT/stage" && mkdir -p "$OUT/stage/bin"

cargo build --release --bin actforge "${FEATURES[@]}"
cp "$TARGET/release/actforge" "$OUT/stage/bin/"

# The integration-test executables, located through cargo's JSON messages.
exe_of() {
    cargo test --release --no-run --test "$1" "${FEATURES[@]}" --message-format=json 2>/dev/null |
        python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -1
}
cp "$(exe_of gpu)" "$OUT/stage/bin/gpu-tests"
if [ -f tests/candle_op.rs ]; then
    cp "$(exe_of candle_op)" "$OUT/stage/bin/cuda-tests"
fi
strip "$OUT"/stage/bin/*
cp scripts/gpu-check.sh scripts/gpu-peers.py "$OUT/stage/"
tar -cJf "$OUT/pack.tar.xz" -C "$OUT/stage" .
rm -rf "$OUT/stage"
ls -la "$OUT/pack.tar.xz"
