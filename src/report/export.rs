//! `actforge export`: a standalone kernel package for one formula.
//!
//! Writes `<name>.cu` (forward and backward, all dtypes), `<name>.h`,
//! `<name>.ptx` and `<name>.cubin` (when NVRTC is available), a
//! `README.md` with the formula, its canonical form and hash, the exact
//! signatures, launch advice and loading examples (CUDA driver API,
//! PyTorch through CuPy), and `<name>.png` of f and f'.

use std::path::{Path, PathBuf};

use crate::codegen::{kernel_name, Direction, Dtype, Layout, MathMode, Module, Selection};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::{to_infix_limited, to_prefix_limited};
use crate::report::plot::{plot, PlotSpec};
use crate::runtime::device::{BLOCK, BLOCKS_PER_SM};
use crate::runtime::nvrtc::{self, compile, parse_ptxas_log, CompileOptions, RegisterReport};
use crate::simplify::hash_hex;

/// What was written, and what could not be.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub files: Vec<PathBuf>,
    /// Why the PTX/CUBIN are missing, if they are.
    pub no_binaries: Option<String>,
    pub registers: Vec<RegisterReport>,
    /// NVRTC time for the CUBIN.
    pub compile_ms: Option<f64>,
}

pub struct ExportSpec<'a> {
    pub formula: &'a str,
    pub function: &'a Function,
    pub out: &'a Path,
    pub name: Option<&'a str>,
    /// SM number, e.g. 90.
    pub arch: u32,
    /// Approximate hardware math (default) or libm and IEEE division.
    pub math: MathMode,
}

fn write(path: PathBuf, text: impl AsRef<[u8]>, report: &mut ExportReport) -> Result<()> {
    std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
    report.files.push(path);
    Ok(())
}

/// Write the package.
pub fn export(spec: &ExportSpec) -> Result<ExportReport> {
    let f = spec.function;
    let name = spec
        .name
        .map(str::to_string)
        .unwrap_or_else(|| format!("act_{}", hash_hex(f.hash)));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::Usage(format!(
            "--name `{name}`: use letters, digits, `_` and `-`"
        )));
    }
    std::fs::create_dir_all(spec.out).map_err(|e| Error::io(spec.out.display().to_string(), e))?;
    let mut module = Module::new(Selection {
        math: spec.math,
        ..Selection::default()
    });
    module.add(f);
    let source = module.source();
    let mut report = ExportReport::default();
    write(spec.out.join(format!("{name}.cu")), &source, &mut report)?;
    let guard = format!("ACTFORGE_{}_H", name.to_ascii_uppercase().replace('-', "_"));
    write(
        spec.out.join(format!("{name}.h")),
        module.header(&guard),
        &mut report,
    )?;

    match nvrtc::load() {
        Ok(_) => {
            let ptx = compile(
                &source,
                &format!("{name}.cu"),
                &CompileOptions::ptx(spec.arch),
            )?;
            write(
                spec.out.join(format!("{name}.ptx")),
                ptx.ptx_text().unwrap_or_default(),
                &mut report,
            )?;
            let opts = CompileOptions {
                verbose_ptxas: true,
                ..CompileOptions::cubin(spec.arch)
            };
            let cubin = compile(&source, &format!("{name}.cu"), &opts)?;
            report.compile_ms = Some(cubin.elapsed.as_secs_f64() * 1e3);
            report.registers = parse_ptxas_log(&cubin.log);
            write(
                spec.out.join(format!("{name}.cubin")),
                &cubin.image,
                &mut report,
            )?;
        }
        Err(e) => report.no_binaries = Some(e.to_string()),
    }

    let png = spec.out.join(format!("{name}.png"));
    let plot_spec = PlotSpec {
        title: spec.formula,
        lo: -5.0,
        hi: 5.0,
        samples: 801,
    };
    plot(f, &plot_spec, &png)?;
    report.files.push(png);

    let readme = readme(spec, &name, &report);
    write(spec.out.join("README.md"), readme, &mut report)?;
    Ok(report)
}

fn math_note(m: MathMode) -> &'static str {
    match m {
        MathMode::Approx => "approximate hardware instructions (ex2, rcp, div.full) within the PTX ISA's error bounds; re-export with `--exact-math` for libm",
        MathMode::Exact => "libm and IEEE division (`--exact-math`)",
    }
}

fn signature(name: &str, dir: Direction, t: &str) -> String {
    match dir {
        Direction::Fwd => format!("extern \"C\" __global__ void {name}(const {t}* x, {t}* y, unsigned long long n);"),
        Direction::Bwd => format!("extern \"C\" __global__ void {name}(const {t}* x, const {t}* dy, {t}* dx, unsigned long long n);"),
    }
}

fn readme(spec: &ExportSpec, name: &str, report: &ExportReport) -> String {
    let f = spec.function;
    let hash = hash_hex(f.hash);
    let fwd = kernel_name(f.hash, Direction::Fwd, Dtype::F32);
    let bwd = kernel_name(f.hash, Direction::Bwd, Dtype::F32);
    let big = "(too large to print)".to_string();
    let infix = to_infix_limited(&f.graph, f.f, 20_000).unwrap_or_else(|| big.clone());
    let prefix = to_prefix_limited(&f.graph, f.f, 20_000).unwrap_or_else(|| big.clone());
    let deriv = to_infix_limited(&f.graph, f.df, 20_000).unwrap_or(big);
    let mut s = format!("# {name}\n\nFused activation kernels generated by actforge.\n\n");
    s += &format!("| | |\n|---|---|\n| formula | `{}` |\n| simplified | `{infix}` |\n| prefix | `{prefix}` |\n| derivative | `{deriv}` |\n| canonical hash | `{hash}` |\n| target | `sm_{}` |\n| math | {} |\n\n", spec.formula, spec.arch, math_note(spec.math));
    s += "## Files\n\n";
    s += &format!("- `{name}.cu`: CUDA C source, self-contained (no includes): compile with NVRTC or nvcc for any arch.\n");
    s += &format!("- `{name}.h`: declarations for C/C++ callers.\n");
    match &report.no_binaries {
        None => {
            s += &format!(
                "- `{name}.ptx` (compute_{a}) and `{name}.cubin` (sm_{a}): precompiled by NVRTC.\n",
                a = spec.arch
            )
        }
        Some(why) => {
            s += &format!(
                "- No `.ptx`/`.cubin`: NVRTC was not available when this was exported ({}).\n",
                why.lines().next().unwrap_or("")
            )
        }
    }
    s += &format!("- `{name}.png`: f (blue) and f' (orange) on [-5, 5].\n\n");
    s += "## Kernels\n\n`T` is `float`, `__nv_bfloat16` or `__half` (in the source: `act_bf16`/`act_f16`, 16-bit structs with the same layout). Math is f32; results are rounded once on store.\n\n```c\n";
    for dtype in Dtype::ALL {
        for dir in Direction::ALL {
            s += &signature(&kernel_name(f.hash, dir, dtype), dir, dtype.cuda_type());
            s.push('\n');
        }
    }
    s += "```\n\n- forward: `y[i] = f(x[i])`\n- backward: `dx[i] = dy[i] * f'(x[i])`, recomputed from `x` alone (save only `x` for backward).\n- `x`, `y`, `dy`, `dx` are contiguous, device memory, `n` elements; `y` may not alias `x`.\n\n";
    s += &format!("## Launch advice\n\nAny grid works (grid-stride loops). Use {BLOCK} threads per block and `min(ceil(n / V / {BLOCK}), {BLOCKS_PER_SM} × SMs)` blocks, where `V` is 4 for f32 and 8 for bf16/f16 (elements per 16-byte vector). Keep pointers 16-byte aligned for the vector path (PyTorch allocations are); other alignments and any `n` are handled by a scalar path.\n\n");
    if !report.registers.is_empty() {
        let how = match Selection::default().inlining.inlines(f, Layout::PerFormula) {
            true => "inlined",
            false => "called",
        };
        s += &format!("Registers per thread on sm_{} (ptxas, in the NVRTC compile of `{name}.cubin`: per-formula kernels, formula {how}, {} math):\n\n| kernel | registers | spills (bytes) |\n|---|---|---|\n", spec.arch, spec.math.name());
        for r in &report.registers {
            s += &format!(
                "| `{}` | {} | {} |\n",
                r.kernel,
                r.registers,
                r.spill_stores + r.spill_loads
            );
        }
        s.push('\n');
    }
    s += &format!(
        r#"## Loading from C++ (CUDA driver API)

```cpp
#include <cuda.h>
// error checks omitted
CUmodule mod;
cuModuleLoad(&mod, "{name}.cubin");            // or "{name}.ptx" (JIT for newer GPUs)
CUfunction fwd;
cuModuleGetFunction(&fwd, mod, "{fwd}");
CUdeviceptr x, y;                                // n floats each, from cuMemAlloc
unsigned long long n = 1 << 24;
// dev: the CUdevice; stream: a CUstream (0 for the default stream)
int sms; cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
unsigned blocks = (unsigned)((n / 4 + {BLOCK} - 1) / {BLOCK});
if (blocks > {BLOCKS_PER_SM}u * sms) blocks = {BLOCKS_PER_SM}u * sms;
if (blocks == 0) blocks = 1;
void* args[] = {{ &x, &y, &n }};
cuLaunchKernel(fwd, blocks, 1, 1, {BLOCK}, 1, 1, 0, stream, args, nullptr);
```

## Loading from PyTorch (through CuPy)

```python
import cupy as cp
import torch

mod = cp.RawModule(path="{name}.cubin")
# or from source: cp.RawModule(code=open("{name}.cu").read(), options=("--std=c++17",))
fwd_k = mod.get_function("{fwd}")
bwd_k = mod.get_function("{bwd}")

def launch(kernel, *tensors):
    n = tensors[0].numel()
    sms = torch.cuda.get_device_properties(tensors[0].device).multi_processor_count
    blocks = max(1, min((n // 4 + {BLOCK} - 1) // {BLOCK}, {BLOCKS_PER_SM} * sms))
    with cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        kernel((blocks,), ({BLOCK},), tuple(t.data_ptr() for t in tensors) + (cp.uint64(n),))

class Act(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        launch(fwd_k, x, y)
        ctx.save_for_backward(x)   # only x is saved
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        dx = torch.empty_like(x)
        launch(bwd_k, x, dy.contiguous(), dx)
        return dx

y = Act.apply(torch.randn(4096, device="cuda"))
```

The example uses the f32 kernels; for bf16/f16 tensors use the `_bf16`/`_f16`
kernels and 8 elements per vector (`n // 8` in the block count).
"#
    );
    s
}
