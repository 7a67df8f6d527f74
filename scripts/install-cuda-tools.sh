#!/usr/bin/env bash
# Install the CUDA compiler pieces actforge uses, from PyPI, without a GPU:
#   NVRTC 13.0 (libnvrtc.so.13 + builtins)  - run-time compilation of kernels
#   ptxas 13.0 (nvidia-cuda-nvcc wheel)      - register/spill checks in tests
#   nvdisasm, cuobjdump 13.2                 - SASS of the CUBINs (roofline report)
# into $ACTFORGE_CUDA_TOOLS, default ~/.cache/actforge/cuda, which actforge
# searches by default. Pinned to CUDA 13.0: driver 580 (CUDA 13.0) accepts
# its PTX; NVRTC 13.5 emits PTX ISA 9.5, which ptxas/driver 13.0 reject.
# The disassemblers only read CUBINs; PyPI has no 13.0 or 13.1 release of
# them, so they are pinned to the oldest there, 13.2.51.
# Takes ~10 s and ~360 MB; does nothing if already installed.
#
# --full additionally installs, into the same prefix, what a full nvcc and a
# `--features cuda` build of candle need (TOOLCHAIN.md): nvvm (cicc,
# libdevice), crt and cccl headers, and cuBLAS and cuRAND for the link step
# (~850 MB more). All pinned: unpinned nvidia-nvvm pulls 13.5. Afterwards
# $PREFIX/nvidia/cu13 is a complete toolkit tree (bin, nvvm, include, lib)
# that scripts/cuda-env.sh turns into a CUDA_HOME. scripts/build-cuda.sh
# uses it.
set -euo pipefail
FULL=0
for arg in "$@"; do
    case "$arg" in
        --full) FULL=1 ;;
        -h|--help) echo "usage: $0 [--full]"; exit 0 ;;
        *) echo "usage: $0 [--full]" >&2; exit 2 ;;
    esac
done

PREFIX="${ACTFORGE_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/cuda}"
LIB="$PREFIX/nvidia/cu13/lib"
BIN="$PREFIX/nvidia/cu13/bin"

PY="${PYTHON:-python3}"

# The --full wheels, exactly pinned (see TOOLCHAIN.md).
FULL_WHEELS=(
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)

# A wheel counts as installed when pip's record of that exact version is in
# the prefix; the files checked in full_present catch a base reinstall
# (pip --upgrade replaces all of nvidia/) that left the records behind.
dist_info() {  # nvidia-cuda-crt==13.0.88 -> nvidia_cuda_crt-13.0.88.dist-info
    local name="${1%%==*}" ver="${1##*==}"
    echo "${name//-/_}-$ver.dist-info"
}

full_present() {
    local w T="$PREFIX/nvidia/cu13"
    for w in "${FULL_WHEELS[@]}"; do
        [ -d "$PREFIX/$(dist_info "$w")" ] || return 1
    done
    [ -x "$T/nvvm/bin/cicc" ] && [ -d "$T/nvvm/libdevice" ] &&
        [ -f "$T/include/crt/host_defines.h" ] && [ -d "$T/include/cccl/cuda" ] &&
        [ -f "$T/lib/libcublas.so.13" ] && [ -f "$T/lib/libcublasLt.so.13" ] &&
        [ -f "$T/lib/libcurand.so.10" ]
}

install_full() {
    if full_present; then
        echo "full CUDA build tools already installed in $PREFIX"
        return
    fi
    echo "Installing nvvm, crt, cccl 13.0, cuBLAS 13.0 and cuRAND 10.4 into $PREFIX"
    # pip --target cannot add files to an existing top-level folder: without
    # --upgrade it skips nvidia/ ("already exists"), with --upgrade it
    # replaces nvidia/ and drops the base wheels (NVRTC, runtime, nvcc). So
    # install into a scratch folder inside the prefix (same file system) and
    # merge it in with hard links.
    local tmp
    tmp=$(mktemp -d "$PREFIX/.install-full.XXXXXX")
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp" \
        "${FULL_WHEELS[@]}"
    # Drop pip records of other versions of these wheels (a changed pin).
    local w n
    for w in "${FULL_WHEELS[@]}"; do
        n="${w%%==*}"
        rm -rf "$PREFIX/${n//-/_}"-*.dist-info
    done
    # --remove-destination: replace files (even a running binary) instead of
    # writing into them.
    cp -a -l --remove-destination "$tmp/." "$PREFIX/" 2>/dev/null ||
        cp -a --remove-destination "$tmp/." "$PREFIX/"
    rm -rf "$tmp"
    trap - EXIT
    if ! full_present; then
        echo "error: the full CUDA wheels did not install completely into $PREFIX" >&2
        exit 1
    fi
    echo "Installed: $PREFIX/nvidia/cu13/nvvm/bin/cicc, cuBLAS, cuRAND, crt and cccl headers"
    # An earlier version of this script used $PREFIX/full (and cuda-env.sh
    # $PREFIX/home); nothing uses them any more.
    if [ -d "$PREFIX/full" ] || [ -d "$PREFIX/home" ]; then
        echo "note: $PREFIX/full and $PREFIX/home are from an older layout and unused; remove them to free ~1 GB"
    fi
}

# The disassemblers, pinned (see above); merged in like the --full wheels.
SASS_WHEELS=(
    nvidia-cuda-nvdisasm==13.2.51
    nvidia-cuda-cuobjdump==13.2.51
)

install_sass() {
    if [ -x "$BIN/nvdisasm" ] && [ -x "$BIN/cuobjdump" ] &&
        [ -d "$PREFIX/$(dist_info "${SASS_WHEELS[0]}")" ] && [ -d "$PREFIX/$(dist_info "${SASS_WHEELS[1]}")" ]; then
        return
    fi
    echo "Installing nvdisasm and cuobjdump 13.2 into $PREFIX"
    local tmp
    tmp=$(mktemp -d "$PREFIX/.install-sass.XXXXXX")
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp" \
        "${SASS_WHEELS[@]}"
    local w n
    for w in "${SASS_WHEELS[@]}"; do
        n="${w%%==*}"
        rm -rf "$PREFIX/${n//-/_}"-*.dist-info
    done
    cp -a -l --remove-destination "$tmp/." "$PREFIX/" 2>/dev/null ||
        cp -a --remove-destination "$tmp/." "$PREFIX/"
    rm -rf "$tmp"
    trap - EXIT
    chmod +x "$BIN/nvdisasm" "$BIN/cuobjdump"
    test -x "$BIN/nvdisasm" && test -x "$BIN/cuobjdump"
    echo "Installed: $BIN/nvdisasm, $BIN/cuobjdump"
}

if [ -f "$LIB/libnvrtc.so.13" ] && [ -f "$LIB/libnvrtc-builtins.so.13.0" ] && [ -x "$BIN/ptxas" ]; then
    echo "CUDA tools already installed in $PREFIX"
    install_sass
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
install_sass
if [ "$FULL" = 1 ]; then install_full; fi
