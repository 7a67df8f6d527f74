#!/usr/bin/env bash
# Install the CUDA compiler pieces actforge uses, from PyPI, without a GPU:
#   NVRTC 13.0 (libnvrtc.so.13 + builtins)  - run-time compilation of kernels
#   ptxas 13.0 (nvidia-cuda-nvcc wheel)      - register/spill checks in tests
# into $ACTFORGE_CUDA_TOOLS, default ~/.cache/actforge/cuda, which actforge
# searches by default. Pinned to CUDA 13.0: driver 580 (CUDA 13.0) accepts
# its PTX; NVRTC 13.5 emits PTX ISA 9.5, which ptxas/driver 13.0 reject.
# Takes ~10 s and ~350 MB; does nothing if already installed.
set -euo pipefail

PREFIX="${ACTFORGE_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/cuda}"
LIB="$PREFIX/nvidia/cu13/lib"
BIN="$PREFIX/nvidia/cu13/bin"

if [ -f "$LIB/libnvrtc.so.13" ] && [ -f "$LIB/libnvrtc-builtins.so.13.0" ] && [ -x "$BIN/ptxas" ]; then
    echo "CUDA tools already installed in $PREFIX"
    exit 0
fi

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "error: $PY not found; install Python 3 with pip, or set PYTHON" >&2
    exit 1
fi

echo "Installing NVRTC 13.0 and ptxas 13.0 into $PREFIX"
mkdir -p "$PREFIX"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target "$PREFIX" \
    nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-nvcc==13.0.88

# The alternative (static-linked) copies are unused: 110+ MB.
rm -f "$LIB/libnvrtc.alt.so.13" "$LIB"/libnvrtc-builtins.alt.so.*

test -f "$LIB/libnvrtc.so.13"
test -x "$BIN/ptxas"
echo "Installed: $LIB/libnvrtc.so.13, $BIN/ptxas"
