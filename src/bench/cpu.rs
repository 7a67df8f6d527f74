//! CPU benchmark of the fused evaluator against the per-node baseline, in
//! the same storage type, side by side.

use std::time::Instant;

use super::{Pass, Row, Variant};
use crate::codegen::Dtype;
use crate::diff::Function;
use crate::ir::{eval_per_node, Lane, Tape};

fn best_of<R>(iters: usize, mut f: impl FnMut() -> R) -> f64 {
    std::hint::black_box(f());
    let mut best = f64::INFINITY;
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Rows for fused (tape) and composed (per node), forward and backward.
pub fn run(f: &Function, dtype: Dtype, elems: usize, iters: usize) -> Vec<Row> {
    match dtype {
        Dtype::F32 => run_typed::<f32>(f, elems, iters),
        Dtype::Bf16 => run_typed::<half::bf16>(f, elems, iters),
        Dtype::F16 => run_typed::<half::f16>(f, elems, iters),
    }
}

fn run_typed<T: Lane>(f: &Function, n: usize, iters: usize) -> Vec<Row> {
    let size = std::mem::size_of::<T>();
    let xs32: Vec<f32> = (0..n)
        .map(|i| ((i as f64 * 0.618_033_988_749_895).fract() * 8.0 - 4.0) as f32)
        .collect();
    let xs: Vec<T> = xs32.iter().map(|&v| T::from_f32(v)).collect();
    let gs: Vec<T> = (0..n)
        .map(|i| T::from_f32(1.0 - (i % 7) as f32 * 0.1))
        .collect();
    let mut y = vec![T::from_f32(0.0); n];
    let mut dx = vec![T::from_f32(0.0); n];
    let tf = Tape::new(&f.graph, &[f.f]);
    let tb = Tape::new(&f.graph, &[f.df]);
    let (mut sf, mut sb) = (tf.scratch(), tb.scratch());
    let fused_fwd = best_of(iters, || tf.map_with(&mut sf, &xs, &mut y));
    let fused_bwd = best_of(iters, || tb.map_mul_with(&mut sb, &xs, &gs, &mut dx));
    // The baseline: widen once, one full pass per node, round once.
    let composed_fwd = best_of(iters, || {
        let wide: Vec<f32> = xs.iter().map(|v| v.to_f32()).collect();
        let out = eval_per_node(&f.graph, f.f, &wide);
        out.iter().map(|&v| T::from_f32(v)).collect::<Vec<T>>()
    });
    let composed_bwd = best_of(iters, || {
        let wide: Vec<f32> = xs.iter().map(|v| v.to_f32()).collect();
        let d = eval_per_node(&f.graph, f.df, &wide);
        d.iter()
            .zip(&gs)
            .map(|(&d, g)| T::from_f32(g.to_f32() * d))
            .collect::<Vec<T>>()
    });
    let fused_both = best_of(iters, || {
        tf.map_with(&mut sf, &xs, &mut y);
        tb.map_mul_with(&mut sb, &xs, &gs, &mut dx)
    });
    let composed_both = best_of(iters, || {
        let wide: Vec<f32> = xs.iter().map(|v| v.to_f32()).collect();
        let out: Vec<T> = eval_per_node(&f.graph, f.f, &wide)
            .iter()
            .map(|&v| T::from_f32(v))
            .collect();
        let d = eval_per_node(&f.graph, f.df, &wide);
        let g: Vec<T> = d
            .iter()
            .zip(&gs)
            .map(|(&d, g)| T::from_f32(g.to_f32() * d))
            .collect();
        (out, g)
    });
    let row = |variant, pass, bytes: usize, seconds: f64| Row {
        variant,
        pass,
        elems: n,
        seconds,
        gbps: bytes as f64 / seconds / 1e9,
    };
    vec![
        row(Variant::Fused, Pass::Fwd, 2 * n * size, fused_fwd),
        row(Variant::Fused, Pass::Bwd, 3 * n * size, fused_bwd),
        row(Variant::Fused, Pass::FwdBwd, 5 * n * size, fused_both),
        row(Variant::Composed, Pass::Fwd, 2 * n * size, composed_fwd),
        row(Variant::Composed, Pass::Bwd, 3 * n * size, composed_bwd),
        row(Variant::Composed, Pass::FwdBwd, 5 * n * size, composed_both),
    ]
}
