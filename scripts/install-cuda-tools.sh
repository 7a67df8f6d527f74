#!/usr/bin/env bash
# Install the CUDA compiler pieces actforge uses, from PyPI, without a GPU:
#   NVRTC 13.0 (libnvrtc.so.13 + builtins)  - run-time compilation of kernels
#   ptxas 13.0 (nvidia-cuda-nvcc wheel)      - register/spill checks in tests
# into $ACTFORGE_CUDA_TOOLS, default ~/.cache/actforge/cuda, which actforge
# searches by default. Pinned to CUDA 13.0: driver 580 (CUDA 13.0) accepts
# its PTX; NVRTC 13.5 emits PTX ISA 9.5, which ptxas/driver 13.0 reject.
# Takes ~10 s and ~350 MB; does nothing if already installed.
#
# --full additionally installs, into $PREFIX/full, what a `--features cuda`
# build of candle needs: the rest of nvcc (nvvm, crt, cccl) and cuBLAS and
# cuRAND for the link step (~850 MB). scripts/build-cuda.sh uses it.
set -euo pipefail
FULL=0
for arg in "$@"; do
    case "$arg" in
        --full) FULL=1 ;;
        *) echo "usage: $0 [--full]" >&2; exit 2 ;;
    esac
done

PREFIX="${ACTFORGE_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/cuda}"
LIB="$PREFIX/nvidia/cu13/lib"
BIN="$PREFIX/nvidia/cu13/bin"

PY="${PYTHON:-python3}"

install_full() {
    local F="$PREFIX/full"
    if [ -x "$F/nvidia/cu13/nvvm/bin/cicc" ] && [ -f "$F/nvidia/cu13/lib/libcublas.so.13" ] && [ -f "$F/nvidia/cu13/lib/libcurand.so.10" ]; then
        echo "full CUDA build tools already installed in $F"
        return
    fi
    echo "Installing nvvm, crt, cccl, cuBLAS and cuRAND 13.0 into $F"
    # A separate target: pip --upgrade --target replaces whole top-level
    # folders (nvidia/), which would drop the base wheels' files.
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target "$F" \
        nvidia-nvvm==13.0.88 \
        nvidia-cuda-crt==13.0.88 \
        nvidia-cuda-cccl==13.0.85 \
        nvidia-cublas==13.0.2.14 \
        nvidia-curand==10.4.0.35
    test -x "$F/nvidia/cu13/nvvm/bin/cicc"
}

if [ -f "$LIB/libnvrtc.so.13" ] && [ -f "$LIB/libnvrtc-builtins.so.13.0" ] && [ -x "$BIN/ptxas" ]; then
    echo "CUDA tools already installed in $PREFIX"
    if [ "$FULL" = 1 ]; then install_full; fi
    exit 0
fi

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
if [ "$FULL" = 1 ]; then install_full; fi
