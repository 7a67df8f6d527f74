//! Benchmarks behind `actforge bench`: the fused activation against the
//! composed one and candle's built-in GELU (and, on a GPU, the raw kernels
//! against a copy and one kernel per op), measured side by side in one run,
//! reported as rows and speedups.

pub mod candle;
pub mod compile;
pub mod kernels;
pub mod sass;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::search::{Method, PrimitiveSet, Tree};

/// The formulas the criterion benches measure, by name: both seeds, GELU
/// written as a formula, and a deep random formula (DEAP `genFull` tree of
/// height 6 from the seed set, RNG seed 3).
pub fn bench_formulas() -> Vec<(&'static str, String)> {
    let set = PrimitiveSet::seed();
    let deep =
        Tree::generate(&mut StdRng::seed_from_u64(3), &set, 6, 6, Method::Full).to_formula(&set);
    vec![
        (
            "seed-qa",
            "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))".into(),
        ),
        (
            "seed-t5",
            "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))".into(),
        ),
        ("gelu_like", "gelu_like(x)".into()),
        ("random-full-6", deep),
    ]
}

/// What was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Device-to-device copy of the same bytes: the bandwidth ceiling.
    Copy,
    /// The fused NVRTC kernels launched directly.
    FusedKernel,
    /// One generated kernel per op, launched directly.
    ComposedKernels,
    /// The formula through the dispatch kernels of a generation-sized
    /// module (`codegen::Layout::Dispatch`), launched directly.
    DispatchKernel,
    /// The fused candle op (`fused:FORMULA`).
    Fused,
    /// The formula as a chain of candle ops (`composed:FORMULA`).
    Composed,
    /// candle's built-in `gelu`.
    Builtin,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Copy => "copy",
            Variant::FusedKernel => "fused-kernel",
            Variant::ComposedKernels => "composed-kernels",
            Variant::DispatchKernel => "dispatch-kernel",
            Variant::Fused => "fused",
            Variant::Composed => "composed",
            Variant::Builtin => "builtin-gelu",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Fwd,
    Bwd,
    FwdBwd,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Fwd => "fwd",
            Pass::Bwd => "bwd",
            Pass::FwdBwd => "fwdbwd",
        }
    }
}

/// One measurement. `gbps` counts the minimal traffic of the pass (read x,
/// write y; backward also reads dy), whatever the variant actually moves.
#[derive(Clone, Debug)]
pub struct Row {
    pub variant: Variant,
    pub pass: Pass,
    pub elems: usize,
    pub seconds: f64,
    pub gbps: f64,
}

/// Time of `other` divided by the fused time, per pass.
pub fn speedups(rows: &[Row], fused: Variant, other: Variant) -> Value {
    let t = |v: Variant, p: Pass| {
        rows.iter()
            .find(|r| r.variant == v && r.pass == p)
            .map(|r| r.seconds)
    };
    let mut obj = serde_json::Map::new();
    for p in [Pass::Fwd, Pass::Bwd, Pass::FwdBwd] {
        let s = match (t(other, p), t(fused, p)) {
            (Some(o), Some(f)) if f > 0.0 => json!(o / f),
            _ => Value::Null,
        };
        obj.insert(p.name().into(), s);
    }
    Value::Object(obj)
}

pub fn rows_json(rows: &[Row]) -> Value {
    let copy = rows
        .iter()
        .find(|r| r.variant == Variant::Copy)
        .map(|r| r.gbps);
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut o = json!({
                    "variant": r.variant.name(),
                    "pass": r.pass.name(),
                    "elems": r.elems,
                    "seconds": r.seconds,
                    "gbps": r.gbps,
                });
                if let Some(c) = copy {
                    o["pct_of_copy"] = json!(100.0 * r.gbps / c);
                }
                o
            })
            .collect(),
    )
}

/// A fixed-width table of the rows.
pub fn table(rows: &[Row]) -> String {
    let copy = rows
        .iter()
        .find(|r| r.variant == Variant::Copy)
        .map(|r| r.gbps);
    let mut s = format!(
        "{:<18} {:<7} {:>12} {:>12} {:>10} {:>8}\n",
        "variant", "pass", "elems", "time (ms)", "GB/s", "% copy"
    );
    for r in rows {
        let pct = copy.map_or("".to_string(), |c| format!("{:.1}", 100.0 * r.gbps / c));
        s += &format!(
            "{:<18} {:<7} {:>12} {:>12.4} {:>10.1} {:>8}\n",
            r.variant.name(),
            r.pass.name(),
            r.elems,
            r.seconds * 1e3,
            r.gbps,
            pct
        );
    }
    s
}
