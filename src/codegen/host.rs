//! The host shim: the same generated CUDA C compiled as C++ for the CPU,
//! plus launch wrappers that run every (block, thread) of a grid in turn.
//! This is how the device code (math, indexing, vector tails, 16-bit
//! conversions) is tested on machines without a GPU.

use super::{Direction, Module};

/// `kernels/host_shim.h`: CUDA keywords and builtins for a C++ compiler.
pub const HOST_SHIM: &str = include_str!("../../kernels/host_shim.h");

/// A C++ translation unit for a composed chain: the shim, its source, and
/// `shim_<kernel>(grid, block, a, b, c, out, n)` for each step's kernel.
pub fn shim_source_composed(c: &super::composed::Composed) -> String {
    let mut s = String::from(HOST_SHIM);
    s.push('\n');
    s.push_str(&c.source);
    let t = c.dtype.c_type();
    for step in &c.steps {
        s.push_str(&format!(
            "extern \"C\" void {w}(unsigned int grid, unsigned int block, const {t}* a, const {t}* b, const {t}* c, {t}* out, unsigned long long n)\n{{\n    for (unsigned int bl = 0; bl < grid; ++bl) {{\n        for (unsigned int th = 0; th < block; ++th) {{\n            act_shim_set(grid, block, bl, th);\n            {k}(a, b, c, out, n);\n        }}\n    }}\n}}\n",
            w = wrapper_name(&step.kernel),
            k = step.kernel
        ));
    }
    s
}

/// Name of the host wrapper of a kernel.
pub fn wrapper_name(kernel: &str) -> String {
    format!("shim_{kernel}")
}

/// A C++ translation unit: the shim, the module's source, and for each
/// kernel `extern "C" void shim_<kernel>(unsigned grid, unsigned block,
/// <kernel arguments>)` (a dispatch kernel's start with the formula id).
/// A population kernel's wrapper is `shim_<kernel>(unsigned grid,
/// unsigned slices, unsigned block, act_slices s, <pointers>, n)`: a grid
/// of `grid × slices` blocks (`blockIdx.y` the slice).
pub fn shim_source(m: &Module) -> String {
    let mut s = String::from("// Host build of an actforge module (see kernels/host_shim.h).\n");
    s.push_str(HOST_SHIM);
    s.push('\n');
    s.push_str(&m.source());
    s.push_str("\n// ---- launch wrappers\n");
    for k in m.kernels() {
        let params = k.params();
        if k.population {
            let args = match k.dir {
                Direction::Fwd => "s, x, y, n",
                Direction::Bwd => "s, x, dy, dx, n",
            };
            s.push_str(&format!(
                "extern \"C\" void {w}(unsigned int grid, unsigned int slices, unsigned int block, {params})\n{{\n    for (unsigned int j = 0; j < slices; ++j) {{\n        for (unsigned int b = 0; b < grid; ++b) {{\n            for (unsigned int t = 0; t < block; ++t) {{\n                act_shim_set_2d(grid, slices, block, b, j, t);\n                {name}({args});\n            }}\n        }}\n    }}\n}}\n",
                w = wrapper_name(&k.name),
                name = k.name,
            ));
            continue;
        }
        let args = match (k.dispatch, k.dir) {
            (false, Direction::Fwd) => "x, y, n",
            (false, Direction::Bwd) => "x, dy, dx, n",
            (true, Direction::Fwd) => "id, x, y, n",
            (true, Direction::Bwd) => "id, x, dy, dx, n",
        };
        s.push_str(&format!(
            "extern \"C\" void {w}(unsigned int grid, unsigned int block, {params})\n{{\n    for (unsigned int b = 0; b < grid; ++b) {{\n        for (unsigned int t = 0; t < block; ++t) {{\n            act_shim_set(grid, block, b, t);\n            {name}({args});\n        }}\n    }}\n}}\n",
            w = wrapper_name(&k.name),
            name = k.name,
        ));
    }
    s
}
