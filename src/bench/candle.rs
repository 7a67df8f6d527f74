//! candle-level benchmark: the fused op, the composed chain of candle ops
//! and candle's built-in GELU, forward, backward and forward+backward
//! through `Tensor::backward`, side by side on one device.
//!
//! `fwd` times `act.forward(x)`; `fwdbwd` times the forward plus
//! `y.backward()` (candle seeds the gradient with ones, so the backward is
//! exactly f'(x)); `bwd` is their difference. Every timing synchronises the
//! device before reading the clock; the best of `iters` runs is reported.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};

use super::{Pass, Row, Variant};
use crate::codegen::Dtype;
use crate::diff::Function;
use crate::op::{Activation, ComposedActivation, FusedActivation};

fn cerr(e: candle_core::Error) -> crate::Error {
    crate::Error::Cuda(format!("candle: {e}"))
}

pub fn candle_dtype(d: Dtype) -> DType {
    match d {
        Dtype::F32 => DType::F32,
        Dtype::Bf16 => DType::BF16,
        Dtype::F16 => DType::F16,
    }
}

fn best(
    dev: &Device,
    iters: usize,
    mut f: impl FnMut() -> candle_core::Result<()>,
) -> crate::Result<f64> {
    f().map_err(cerr)?;
    dev.synchronize().map_err(cerr)?;
    let mut best = f64::INFINITY;
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        f().map_err(cerr)?;
        dev.synchronize().map_err(cerr)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub struct CandleBench<'a> {
    pub formula: &'a str,
    pub function: &'a Function,
    pub device: &'a Device,
    pub dtype: Dtype,
    pub elems: usize,
    pub iters: usize,
}

/// Rows for fused, composed and built-in GELU, each fwd, bwd and fwdbwd.
pub fn run(spec: &CandleBench) -> crate::Result<Vec<Row>> {
    let dev = spec.device;
    let n = spec.elems;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i as f64 * 0.618_033_988_749_895).fract() * 8.0 - 4.0) as f32)
        .collect();
    let x = Tensor::from_vec(xs, n, dev)
        .and_then(|t| t.to_dtype(candle_dtype(spec.dtype)))
        .map_err(cerr)?;
    let variants = [
        (
            Variant::Fused,
            Activation::Fused(FusedActivation::from_function(
                spec.formula,
                spec.function.clone(),
            )),
        ),
        (
            Variant::Composed,
            Activation::Composed(ComposedActivation::from_function(
                spec.formula,
                spec.function.clone(),
            )),
        ),
        (Variant::Builtin, Activation::Gelu),
    ];
    let size = spec.dtype.size();
    let mut rows = Vec::new();
    for (variant, act) in variants {
        let fwd = best(dev, spec.iters, || act.forward(&x).map(drop))?;
        let var = Var::from_tensor(&x).map_err(cerr)?;
        let both = best(dev, spec.iters, || {
            let y = act.forward(var.as_tensor())?;
            y.backward().map(drop)
        })?;
        let row = |pass, bytes: usize, seconds: f64| Row {
            variant,
            pass,
            elems: n,
            seconds,
            gbps: bytes as f64 / seconds / 1e9,
        };
        let bwd = (both - fwd).max(f64::MIN_POSITIVE);
        rows.push(row(Pass::Fwd, 2 * n * size, fwd));
        rows.push(row(Pass::Bwd, 3 * n * size, bwd));
        rows.push(row(Pass::FwdBwd, 5 * n * size, both));
    }
    Ok(rows)
}
