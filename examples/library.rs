//! Using actforge as a library: parse a GP formula, simplify it, take its
//! derivative and evaluate both. This file is also the crate's front-page
//! doc example, so it is compiled and run by `cargo test`.

use actforge::diff::Function;
use actforge::ir::{parse, to_infix, Tape};
use actforge::simplify::hash_hex;

fn main() {
    // The TinyGPT Q&A activation evolved in the seed experiments.
    let src = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
    let formula = parse(src).expect("the seed formula parses");

    // Simplify soundly and differentiate symbolically.
    let f = Function::new(&formula);
    println!("f(x)  = {}", to_infix(&f.graph, f.f));
    println!("hash  = {}", hash_hex(f.hash));

    // f64 reference values: sin(σ(1)) · σ(gelu_tanh(1)).
    let sigma = |v: f64| 1.0 / (1.0 + (-v).exp());
    let gelu1 = 0.5 * (1.0 + (0.7978845608028654f64 * 1.044715).tanh());
    let want = sigma(1.0).sin() * sigma(gelu1);
    assert!((f.value(1.0) - want).abs() < 1e-12);

    // The fused CPU evaluator: one pass, f32 math, any slice length.
    let xs: Vec<f32> = (-8..=8).map(|i| i as f32 * 0.5).collect();
    let mut ys = vec![0.0f32; xs.len()];
    let report = Tape::new(&f.graph, &[f.f]).map(&xs, &mut ys);
    assert!(report.complete(), "every output is finite");
    for (x, y) in xs.iter().zip(&ys) {
        assert!((*y as f64 - f.value(*x as f64)).abs() < 1e-5);
    }
    println!("f'(0) = {:.6}", f.derivative(0.0));
}
