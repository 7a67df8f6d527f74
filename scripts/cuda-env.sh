# Source this (bash) to build actforge with `--features cuda` on a machine
# with no CUDA install: it assembles a CUDA_HOME from the PyPI wheels that
# `scripts/install-cuda-tools.sh --full` installed, builds a stub libcuda
# where there is no driver, and exports what candle's build needs
# (TOOLCHAIN.md). Keep the environment identical for every cargo call:
# any change re-runs candle-kernels' 15-minute build.

_ACT_PREFIX="${ACTFORGE_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/cuda}"
_ACT_HOME="$_ACT_PREFIX/home"
_ACT_T="$_ACT_HOME/targets/x86_64-linux"

_act_setup_home() {
    local base="$_ACT_PREFIX/nvidia/cu13" full="$_ACT_PREFIX/full/nvidia/cu13"
    if [ ! -x "$full/nvvm/bin/cicc" ]; then
        echo "cuda-env.sh: run scripts/install-cuda-tools.sh --full first" >&2
        return 1
    fi
    [ -x "$_ACT_HOME/bin/nvcc" ] && [ -f "$_ACT_T/lib/libcublas.so" ] && return 0
    rm -rf "$_ACT_HOME"
    mkdir -p "$_ACT_HOME" "$_ACT_T/include" "$_ACT_T/lib"
    # nvcc finds its profile, cicc and headers relative to its own folder,
    # so bin/ and nvvm/ are real (hard-linked) copies, not symlinks.
    cp -al "$base/bin" "$_ACT_HOME/bin" 2>/dev/null || cp -a "$base/bin" "$_ACT_HOME/bin"
    cp -al "$full/nvvm" "$_ACT_HOME/nvvm" 2>/dev/null || cp -a "$full/nvvm" "$_ACT_HOME/nvvm"
    cp -rsf "$base/include/." "$_ACT_T/include/"
    cp -rsf "$full/include/." "$_ACT_T/include/"
    local so
    for so in "$base"/lib/*.so.* "$full"/lib/*.so.*; do
        ln -sf "$so" "$_ACT_T/lib/$(basename "$so")"
        ln -sf "$so" "$_ACT_T/lib/$(basename "$so" | sed 's/\.so\..*/.so/')"
    done
    ln -sfn "$_ACT_T/include" "$_ACT_HOME/include"
    ln -sfn "$_ACT_T/lib" "$_ACT_HOME/lib"
    ln -sfn "$_ACT_T/lib" "$_ACT_HOME/lib64"
    ln -sfn "$_ACT_T/lib" "$_ACT_T/lib64"
}

# A real driver? Then link against it and never put the stub on the path.
_act_has_driver() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1
}

# libcuda.so.1 whose every entry point returns CUDA_ERROR_STUB_LIBRARY (34):
# lets a cuda-featured binary link and start on a GPU-less machine, where
# Device::new_cuda then fails cleanly.
_act_make_stub() {
    local stub="$_ACT_PREFIX/stub"
    [ -f "$stub/libcuda.so.1" ] && return 0
    mkdir -p "$stub"
    local sys
    sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10/src/driver/sys/mod.rs 2>/dev/null | head -1)
    if [ -z "$sys" ]; then
        echo "cuda-env.sh: cudarc 0.19.10 sources not found; run \`cargo fetch\` first" >&2
        return 1
    fi
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$sys" | sed 's/pub unsafe fn //' | sort -u |
        awk '{ printf "int %s(void) { return 34; }\n", $1 }' > "$stub/stub.c"
    gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so.1" "$stub/stub.c"
    ln -sf libcuda.so.1 "$stub/libcuda.so"
}

if _act_setup_home && _act_make_stub; then
    export CUDA_HOME="$_ACT_HOME" CUDA_PATH="$_ACT_HOME" CUDA_ROOT="$_ACT_HOME"
    export NVCC="$_ACT_HOME/bin/nvcc"
    export CUDA_COMPUTE_CAP=90 CUDARC_CUDA_VERSION=13000
    export PATH="$_ACT_HOME/bin:$PATH"
    _act_ld="$_ACT_T/lib"
    if ! _act_has_driver; then
        ln -sf "$_ACT_PREFIX/stub/libcuda.so.1" "$_ACT_T/lib/libcuda.so.1"
        ln -sf "$_ACT_PREFIX/stub/libcuda.so" "$_ACT_T/lib/libcuda.so"
        _act_ld="$_ACT_PREFIX/stub:$_act_ld"
    else
        rm -f "$_ACT_T/lib/libcuda.so.1" "$_ACT_T/lib/libcuda.so"
    fi
    export LD_LIBRARY_PATH="$_act_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LIBRARY_PATH="$_act_ld${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CUDA:-${XDG_CACHE_HOME:-$HOME/.cache}/actforge/target-cuda}"
    unset _act_ld
else
    echo "cuda-env.sh: environment NOT set up" >&2
fi
