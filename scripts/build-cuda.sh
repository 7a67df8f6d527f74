#!/usr/bin/env bash
# Build actforge with `--features cuda` (candle's CUDA backend and the fused
# ops' CUDA paths) on a machine without CUDA, and prove the binary starts
# and runs CPU work without a driver. The target dir lives outside the
# clone (~/.cache/actforge/target-cuda), so later runs rebuild only what
# changed; a fresh machine needs about 25 minutes (candle-kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-cuda-tools.sh --full
cargo fetch --quiet
# shellcheck source=cuda-env.sh
source scripts/cuda-env.sh
echo "CUDA_HOME=$CUDA_HOME CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
cargo build --release --features cuda --all-targets
bin="$CARGO_TARGET_DIR/release/actforge"
"$bin" --help >/dev/null
out=$("$bin" eval 'silu(x)' --x=1 --json)
echo "cuda build runs CPU work without a driver: $out"
test "$out" = '{"y":[0.7310585786300049]}'
echo "build-cuda: done in $(( $(date +%s) - start )) s"
