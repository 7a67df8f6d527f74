//! The seed formulas from the blog: values and derivatives on a grid,
//! against references computed by hand (closed forms and chain rules
//! written out below), through every evaluator.

mod common;

use actforge::diff::Function;
use actforge::ir::{parse, Tape};
use common::close;

/// TinyGPT Q&A: gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0)).
const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
/// T5-small, with the `)` the published text is missing.
const T5: &str = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";

fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

const C: f64 = 0.7978845608028654;
const K: f64 = 0.044715;

/// f(x) = sin(σ(x)) · σ(g(x)), g = gelu_tanh; σ > 0 so the relu is inert.
fn qa(x: f64) -> (f64, f64) {
    let t = (C * (x + K * x * x * x)).tanh();
    let g = 0.5 * x * (1.0 + t);
    let dg = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * K * x * x);
    let (s, sg) = (sigma(x), sigma(g));
    let f = s.sin() * sg;
    let df = s.cos() * s * (1.0 - s) * sg + s.sin() * sg * (1.0 - sg) * dg;
    (f, df)
}

/// f(x) = log1p(|cos(u)|), u = tan(s)·σ(x), s = x/(1+|x|) ∈ (−1, 1), so
/// the clamp to ±1.5 is inert and |u| < tan(1) < π/2 keeps cos(u) > 0.
fn t5(x: f64) -> (f64, f64) {
    let s = x / (1.0 + x.abs());
    let ds = 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs()));
    let sg = sigma(x);
    let u = s.tan() * sg;
    let du = (1.0 + s.tan() * s.tan()) * ds * sg + s.tan() * sg * (1.0 - sg);
    let v = u.cos();
    let f = v.abs().ln_1p();
    let df = v.signum() / (1.0 + v.abs()) * (-u.sin()) * du;
    (f, df)
}

fn grid() -> Vec<f64> {
    let mut xs: Vec<f64> = (0..=96).map(|i| -6.0 + 0.125 * i as f64).collect();
    xs.extend([-50.0, -20.0, -9.5, 9.5, 20.0, 50.0]);
    xs
}

fn check(src: &str, reference: fn(f64) -> (f64, f64)) {
    let f = Function::new(&parse(src).unwrap());
    let xs = grid();
    // f64 reference evaluator: agrees with the hand derivation to rounding.
    for &x in &xs {
        let (want, dwant) = reference(x);
        let (got, dgot) = (f.value(x), f.derivative(x));
        assert!(
            (got - want).abs() <= 1e-12 * want.abs() + 1e-14,
            "{src} at {x}: f {got} vs {want}"
        );
        assert!(
            (dgot - dwant).abs() <= 1e-10 * dwant.abs() + 1e-13,
            "{src} at {x}: f' {dgot} vs {dwant}"
        );
    }
    // The fused f32 CPU path: within the PRIMITIVES.md tolerance.
    let xf: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let tape_f = Tape::new(&f.graph, &[f.f]);
    let tape_df = Tape::new(&f.graph, &[f.df]);
    let mut y = vec![0.0f32; xf.len()];
    let mut dx = vec![0.0f32; xf.len()];
    assert!(tape_f.map(&xf, &mut y).complete());
    let ones = vec![1.0f32; xf.len()];
    assert!(tape_df.map_mul(&xf, &ones, &mut dx).complete());
    for (i, &x) in xf.iter().enumerate() {
        let (want, dwant) = reference(x as f64);
        assert!(
            close(y[i] as f64, want),
            "{src} f32 at {x}: {} vs {want}",
            y[i]
        );
        assert!(
            close(dx[i] as f64, dwant),
            "{src} f32 f' at {x}: {} vs {dwant}",
            dx[i]
        );
    }
}

#[test]
fn qa_formula_values_and_derivatives() {
    check(QA, qa);
}

#[test]
fn t5_formula_values_and_derivatives() {
    check(T5, t5);
}

#[test]
fn seed_values_at_a_few_points_by_hand() {
    // Spot values computed independently (Python, float64):
    //   sin(σ(0)) σ(gelu(0)) = sin(0.5) · 0.5
    let f = Function::new(&parse(QA).unwrap());
    assert!((f.value(0.0) - 0.5f64.sin() * 0.5).abs() < 1e-15);
    // T5 at 0: u = tan(0)·σ(0) = 0, cos(0) = 1, log1p(1) = ln 2.
    let g = Function::new(&parse(T5).unwrap());
    assert!((g.value(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
    // ... and f'(0) = 0 there (the slope of cos at 0).
    assert!(g.derivative(0.0).abs() < 1e-15);
}

#[test]
fn simplification_keeps_the_seed_formulas_intact() {
    for src in [QA, T5] {
        let f = Function::new(&parse(src).unwrap());
        assert!(f.nodes_after <= f.nodes_before, "{src}");
        assert_eq!(f.stop, actforge::simplify::StopReason::Saturated);
    }
}

#[test]
fn deep_but_legal_formulas_survive_the_whole_pipeline() {
    // 250 levels: under the nesting limit. Parse, simplify, differentiate
    // and print on a test thread's stack.
    for src in [
        format!("{}x{}", "sin(".repeat(250), ")".repeat(250)),
        format!("{}x{}", "safe_div(1, ".repeat(120), ")".repeat(120)),
        format!("{}x{}", "gelu_like(".repeat(60), ")".repeat(60)),
    ] {
        let f = Function::new(&parse(&src).unwrap());
        let limited = actforge::ir::to_infix_limited(&f.graph, f.df, actforge::ir::MAX_PRINT_NODES);
        assert_eq!(
            limited.is_some(),
            f.graph.tree_size(f.df) <= actforge::ir::MAX_PRINT_NODES
        );
        // Forward trees can be exponential too (safe_div uses its divisor
        // twice): printing must refuse rather than hang.
        let fwd = actforge::ir::to_infix_limited(&f.graph, f.f, actforge::ir::MAX_PRINT_NODES);
        assert_eq!(
            fwd.is_some(),
            f.graph.tree_size(f.f) <= actforge::ir::MAX_PRINT_NODES
        );
        assert!(f.derivative(0.3).is_finite());
    }
}
