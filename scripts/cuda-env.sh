# shellcheck shell=bash
# Source this (bash) to build actforge with `--features cuda` on a machine
# with no CUDA install (TOOLCHAIN.md):
#
#   scripts/install-cuda-tools.sh --full && scripts/make-libcuda-stub.sh
#   source scripts/cuda-env.sh
#   cargo build --release --features cuda
#
# It assembles a CUDA_HOME ($PREFIX/cuda-home, PREFIX = $ACTFORGE_CUDA_TOOLS,
# default ~/.cache/actforge/cuda) out of links into the PyPI wheels, and
# exports only:
#   CUDA_HOME            cudarc's link search (lib/), nvcc's tree
#   NVCC                 candle-kernels' nvcc (cudaforge)
#   CUDA_COMPUTE_CAP=90  no nvidia-smi to ask on a CPU-only machine
#   CUDARC_CUDA_VERSION=13000  cudarc's version without running nvcc
#   PATH                 + $CUDA_HOME/bin (nvcc, ptxas, ...)
#   LD_LIBRARY_PATH      + the wheels' lib folder (NVRTC, cuBLAS, cuRAND,
#                        cudart), and the stub libcuda folder ONLY where
#                        there is no real driver
#   CARGO_TARGET_DIR     $ACTFORGE_CUDA_TARGET_DIR, default
#                        ~/.cache/actforge/target-cuda: outside the clone,
#                        so a later CI run on the same machine rebuilds only
#                        what changed
# and leaves no other variable, function or shell option behind. Sourcing it
# twice gives the same environment (PATH entries are not repeated).
#
# Keep the environment identical for every cargo call: NVCC,
# CUDA_COMPUTE_CAP, CUDA_HOME and CUDARC_CUDA_VERSION are build-script
# inputs, and a change re-runs candle-kernels' build (~16 minutes on 2
# cores).
#
# The driver: a real one is a libcuda.so.1 in the system library folders
# plus an nvidia-smi that works. Otherwise libcuda.so (link step) and
# libcuda.so.1 (run time) are the stub from scripts/make-libcuda-stub.sh,
# whose every entry point returns CUDA_ERROR_STUB_LIBRARY. Override with
# ACTFORGE_CUDA_STUB=1 (always the stub) or =0 (never: trust a system
# libcuda.so.1 without asking nvidia-smi, e.g. a GPU container without it).
#
# nvcc: nvcc reads nvcc.profile from the folder it was *called* from (it
# does not resolve links) and takes TOP = that folder's parent. The wheel
# tree has no targets/x86_64-linux, so the profile then means -I TOP/include,
# -isystem TOP/include/cccl, cicc from TOP/nvvm/bin and -L TOP/lib64. So
# cuda-home/bin holds links to each wheel tool (not a link to the folder),
# and cuda-home has include, nvvm and lib64 (-> lib): nvcc compiles, and
# links executables, with no extra flags (no NVCC_APPEND_FLAGS, no -L).

if [ "${BASH_SOURCE[0]:-$0}" = "$0" ]; then
    echo "cuda-env.sh: source it (\`source scripts/cuda-env.sh\`); running it changes nothing" >&2
    exit 2
fi

_actforge_cuda_env() {
    # Leave nothing behind in the caller's shell: bash finishes a function
    # that unsets itself, and locals go away on return.
    unset -f _actforge_cuda_env
    local prefix="${ACTFORGE_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/cuda}"
    local wheel home stub real
    wheel="$prefix/nvidia/cu13"
    home="$prefix/cuda-home"
    stub="$prefix/stub"

    if [ ! -x "$wheel/bin/nvcc" ] || [ ! -x "$wheel/nvvm/bin/cicc" ] ||
        [ ! -f "$wheel/include/crt/host_defines.h" ] || [ ! -f "$wheel/lib/libcublas.so.13" ] ||
        [ ! -f "$wheel/lib/libcurand.so.10" ] || [ ! -f "$wheel/lib/libnvrtc.so.13" ]; then
        echo "cuda-env.sh: the CUDA 13.0 wheels are missing or incomplete in $prefix;" \
            "run scripts/install-cuda-tools.sh --full" >&2
        return 1
    fi

    # A real driver? In a subshell: globs must not depend on the caller's
    # shell options (failglob, nullglob).
    real=$(
        shopt -u failglob nullglob 2>/dev/null
        [ "${ACTFORGE_CUDA_STUB:-}" = 1 ] && exit 0
        lib=""
        for f in /usr/lib*/libcuda.so.1 /usr/lib*/*/libcuda.so.1 /usr/local/nvidia/lib*/libcuda.so.1; do
            if [ -e "$f" ]; then lib="$f"; break; fi
        done
        if [ -z "$lib" ]; then
            lib=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null |
                awk '$1 == "libcuda.so.1" && /x86-64/ { print $NF; exit }')
        fi
        [ -n "$lib" ] || exit 0
        if [ "${ACTFORGE_CUDA_STUB:-}" != 0 ]; then
            command -v nvidia-smi >/dev/null 2>&1 || exit 0
            timeout 60 nvidia-smi -L >/dev/null 2>&1 || exit 0
        fi
        echo "$lib"
    )
    if [ -z "$real" ] && [ ! -f "$stub/libcuda.so.1" ]; then
        echo "cuda-env.sh: no NVIDIA driver here and no stub libcuda in $stub;" \
            "run scripts/make-libcuda-stub.sh" >&2
        return 1
    fi

    # Assemble CUDA_HOME, strictly, in a subshell (the caller's options stay
    # as they are). Only links, updated only where they differ, so this is
    # cheap and idempotent.
    if ! (
        set -euo pipefail
        shopt -u failglob nullglob 2>/dev/null || true
        link() { [ "$(readlink "$2" 2>/dev/null)" = "$1" ] || ln -sfn "$1" "$2"; }
        mkdir -p "$home/bin" "$home/lib"
        # Each tool (nvcc, nvcc.profile, ptxas, nvlink, fatbinary, cudafe++,
        # bin2c, crt/), so that nvcc's TOP is $home (see the header).
        for f in "$wheel"/bin/*; do link "$f" "$home/bin/${f##*/}"; done
        link "$wheel/include" "$home/include"
        link "$wheel/nvvm" "$home/nvvm"
        # The link step wants unversioned names (-lcublas -> libcublas.so);
        # the wheels ship only libX.so.N.
        for f in "$wheel"/lib/*; do
            [ -f "$f" ] || continue
            b="${f##*/}"
            link "$f" "$home/lib/$b"
            case "$b" in *.so.*) link "$b" "$home/lib/${b%%.so.*}.so" ;; esac
        done
        # candle's cudarc links -lcuda: the driver's, or else the stub.
        link "${real:-$stub/libcuda.so.1}" "$home/lib/libcuda.so"
        # nvcc's profile adds -L TOP/lib64 for a tree without targets/.
        link lib "$home/lib64"
        test -x "$home/bin/nvcc" && test -d "$home/include/crt" && test -x "$home/nvvm/bin/cicc" &&
            test -e "$home/lib/libcudart.so" && test -e "$home/lib/libcuda.so"
    ); then
        echo "cuda-env.sh: could not assemble CUDA_HOME in $home" >&2
        return 1
    fi

    export CUDA_HOME="$home"
    export NVCC="$home/bin/nvcc"
    export CUDA_COMPUTE_CAP=90
    export CUDARC_CUDA_VERSION=13000
    case ":$PATH:" in *":$home/bin:"*) ;; *) export PATH="$home/bin:$PATH" ;; esac

    # Run time: the wheels' libraries; the stub only without a driver (and
    # never left over from an earlier sourcing where there is one).
    local ld="" p
    local -a old=()
    [ -z "${LD_LIBRARY_PATH:-}" ] || IFS=: read -r -a old <<<"$LD_LIBRARY_PATH"
    [ -n "$real" ] || ld="$stub"
    ld="${ld:+$ld:}$wheel/lib"
    for p in "${old[@]}"; do
        [ "$p" = "$stub" ] || [ "$p" = "$wheel/lib" ] || ld="$ld:$p"
    done
    export LD_LIBRARY_PATH="$ld"

    export CARGO_TARGET_DIR="${ACTFORGE_CUDA_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/target-cuda}"
    echo "cuda-env.sh: CUDA_HOME=$CUDA_HOME, libcuda: ${real:-stub ($stub), no driver here}," \
        "CARGO_TARGET_DIR=$CARGO_TARGET_DIR" >&2
}
_actforge_cuda_env
