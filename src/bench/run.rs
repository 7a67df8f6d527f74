//! One `actforge bench` run as a library call: pick the device, check the
//! sizes, measure every variant side by side, and return the rows with the
//! speedups and what the reader must know (notes, noise warnings). The CLI
//! only prints [`BenchReport::json`] or [`BenchReport::text`].

use serde_json::{json, Value};

use super::{rows_json, speedups, spread_warning, table, Row, Variant};
use crate::codegen::Dtype;
use crate::device::Device;
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::report::number::significant;
use crate::simplify::hash_hex;

/// What to measure.
pub struct BenchSpec<'a> {
    pub formula: &'a str,
    pub function: &'a Function,
    /// Where to measure (`cuda` is GPU 0).
    pub target: Device,
    pub elems: usize,
    pub dtype: Dtype,
    pub iters: usize,
}

/// What was measured.
pub struct BenchReport {
    /// The device, in words.
    pub device: String,
    pub rows: Vec<Row>,
    /// What the run could not measure, and why.
    pub notes: Vec<String>,
    /// Rows too noisy to trust (see [`super::NOISY_SPREAD`]).
    pub warnings: Vec<String>,
}

/// Measure. Sizes are checked before anything is allocated.
pub fn run(spec: &BenchSpec) -> Result<BenchReport> {
    super::check_sizes(spec.elems, spec.iters)?;
    let candle = |device: &candle_core::Device| {
        super::candle::run(&super::candle::CandleBench {
            formula: spec.formula,
            function: spec.function,
            device,
            dtype: spec.dtype,
            elems: spec.elems,
            iters: spec.iters,
        })
    };
    let mut notes = Vec::new();
    let (rows, device) = match spec.target.ordinal() {
        Some(ordinal) => {
            let gpu = crate::runtime::device::Gpu::open(ordinal)?;
            let kspec = super::kernels::KernelBench {
                function: spec.function,
                dtype: spec.dtype,
                elems: spec.elems,
                iters: spec.iters,
            };
            let mut rows = super::kernels::run(&gpu, &kspec)?;
            if cfg!(feature = "cuda") {
                let dev = candle_core::Device::new_cuda(ordinal)
                    .map_err(|e| Error::Cuda(format!("candle: {e}")))?;
                rows.extend(candle(&dev)?);
            } else {
                notes.push("this binary was built without the `cuda` feature: the candle-level rows (fused op, composed ops, built-in GELU) need `cargo build --release --features cuda`".to_string());
            }
            let name = format!("{} (sm_{}, {} SMs)", gpu.name, gpu.arch, gpu.sm_count);
            (rows, name)
        }
        None => {
            super::check_host_memory(spec.elems, spec.dtype.size())?;
            let mut rows = vec![super::copy::run(spec.elems, spec.dtype.size(), spec.iters)];
            rows.extend(candle(&candle_core::Device::Cpu)?);
            let threads = candle_core::utils::get_num_threads();
            (rows, format!("CPU ({threads} threads)"))
        }
    };
    let warnings = spread_warning(&rows).into_iter().collect();
    Ok(BenchReport {
        device,
        rows,
        notes,
        warnings,
    })
}

impl BenchReport {
    fn speedups(&self) -> [(&'static str, Value); 3] {
        [
            (
                "composed",
                speedups(&self.rows, Variant::Fused, Variant::Composed),
            ),
            (
                "builtin",
                speedups(&self.rows, Variant::Fused, Variant::Builtin),
            ),
            (
                "composed_kernels",
                speedups(&self.rows, Variant::FusedKernel, Variant::ComposedKernels),
            ),
        ]
    }

    /// The `--json` object (keys in `actforge bench --help`).
    pub fn json(&self, spec: &BenchSpec) -> Value {
        let [(_, vs), (_, vb), (_, vk)] = self.speedups();
        let mut v = json!({
            "device": self.device,
            "formula": spec.formula,
            "dtype": spec.dtype.name(),
            "elems": spec.elems,
            "iters": spec.iters,
            "hash": hash_hex(spec.function.hash),
            "rows": rows_json(&self.rows),
            "speedup_vs_composed": vs,
            "speedup_vs_builtin": vb,
            "warnings": self.warnings,
        });
        if spec.target.is_cuda() {
            v["kernel_speedup_vs_composed_kernels"] = vk;
        }
        v
    }

    /// The text report: a header, the table and the speedups.
    pub fn text(&self, spec: &BenchSpec) -> String {
        let mut s = format!(
            "{}, {}, {} elements, {} rounds: {}\n",
            self.device,
            spec.dtype.name(),
            spec.elems,
            spec.iters,
            crate::syntax::escape_controls(spec.formula)
        );
        s += &table(&self.rows);
        let g = |v: &Value, k: &str| {
            v[k].as_f64()
                .map_or("-".into(), |x| significant(x, 3) + "x")
        };
        let [(_, vs), (_, vb), (_, vk)] = self.speedups();
        let mut lines = vec![
            ("fused speedup vs composed", vs),
            ("fused speedup vs built-in gelu", vb),
        ];
        if spec.target.is_cuda() {
            lines.push(("fused kernels vs one kernel per op", vk));
        }
        for (name, v) in lines {
            s += &format!(
                "{name}: fwd {}, bwd {}, fwd+bwd {}\n",
                g(&v, "fwd"),
                g(&v, "bwd"),
                g(&v, "fwdbwd")
            );
        }
        s
    }
}
