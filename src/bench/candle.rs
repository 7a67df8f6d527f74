//! candle-level benchmark: the fused op, the composed chain of candle ops
//! and candle's built-in GELU, forward, backward and forward+backward
//! through `Tensor::backward`, side by side on one device.
//!
//! Each round runs `y = act.forward(x)` on a tracked `x` (as in training)
//! and then `y.backward()` (candle seeds the gradient with ones, so the
//! backward computes exactly f'(x)); `fwd` and `bwd` time the two halves and
//! `fwdbwd` the round. Every timing synchronises the device before reading
//! the clock; each row reports the median of `iters` rounds (not the best:
//! the composed paths allocate a full-size tensor per op, and their times
//! swing with the allocator's luck; the median is the typical training
//! step) with the fastest and slowest.

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

pub struct CandleBench<'a> {
    pub formula: &'a str,
    pub function: &'a Function,
    pub device: &'a Device,
    pub dtype: Dtype,
    pub elems: usize,
    pub iters: usize,
}

/// Keep freed memory in the process (glibc): otherwise every full-size
/// temporary of the composed path is a fresh `mmap` whose page faults decide
/// its time, and that time swings by 3-4x between runs. Steady state, as in
/// a long training run, is the composed path at its best: a conservative
/// baseline for the fused one.
pub fn keep_freed_memory() {
    crate::fitness::alloc::keep_freed_memory()
}

/// Rows for fused, composed and built-in GELU, each fwd, bwd and fwdbwd.
pub fn run(spec: &CandleBench) -> crate::Result<Vec<Row>> {
    super::check_sizes(spec.elems, spec.iters)?;
    keep_freed_memory();
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
        let var = Var::from_tensor(&x).map_err(cerr)?;
        let (mut tf, mut tb, mut tt) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=spec.iters {
            let t0 = Instant::now();
            // The built-in row is candle's own GELU op (Activation::Gelu
            // runs the fused gelu_like on the CPU).
            let y = match variant {
                Variant::Builtin => var.as_tensor().gelu(),
                _ => act.forward(var.as_tensor()),
            }
            .map_err(cerr)?;
            dev.synchronize().map_err(cerr)?;
            let t1 = Instant::now();
            let grads = y.backward().map_err(cerr)?;
            dev.synchronize().map_err(cerr)?;
            let t2 = Instant::now();
            drop((y, grads));
            if i > 0 {
                // The first round warms up (allocations, kernel loading).
                tf.push((t1 - t0).as_secs_f64());
                tb.push((t2 - t1).as_secs_f64());
                tt.push((t2 - t0).as_secs_f64());
            }
        }
        let row = |pass, tensors: usize, samples: &[f64]| {
            Row::from_samples(variant, pass, n, tensors * n * size, samples)
        };
        rows.push(row(Pass::Fwd, 2, &tf));
        rows.push(row(Pass::Bwd, 3, &tb));
        rows.push(row(Pass::FwdBwd, 5, &tt));
    }
    Ok(rows)
}
