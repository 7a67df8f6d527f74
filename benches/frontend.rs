//! Front-end speed: parse + lower + simplify + differentiate one formula.
//!
//! Also prints (once) the mean node reduction by `simplify` over 10,000
//! random trees from the seed primitive set, for the README.
//!
//!   cargo bench --bench frontend

use std::hint::black_box;

use actforge::diff::Function;
use actforge::gp::{Method, PrimitiveSet, Tree};
use actforge::ir::parse;
use actforge::simplify::simplify;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Formulas of DEAP height 6 (root at depth 0): `Full` trees have every
/// leaf at depth 6; `Grow` trees have height drawn from 2..=6 and leaves
/// anywhere below depth 2 (DEAP's genGrow).
fn trees(n: usize, method: Method, seed: u64) -> Vec<String> {
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let min = if method == Method::Full { 6 } else { 2 };
    (0..n)
        .map(|_| Tree::generate(&mut rng, &set, min, 6, method).to_formula(&set))
        .collect()
}

fn node_reduction() {
    for method in [Method::Full, Method::Grow] {
        let (mut before, mut after, mut total_ratio) = (0usize, 0usize, 0.0f64);
        let formulas = trees(10_000, method, 2026);
        for f in &formulas {
            let e = parse(f).unwrap();
            let s = simplify(&e);
            let a = s.graph.dag_size(&s.roots);
            before += e.node_count();
            after += a;
            total_ratio += 1.0 - a as f64 / e.node_count() as f64;
        }
        let n = formulas.len() as f64;
        println!(
            "node reduction, 10,000 {:?} trees (height <= 6): mean DAG nodes {:.1} -> {:.1} (total -{:.1}%, mean per tree -{:.1}%)",
            method,
            before as f64 / n,
            after as f64 / n,
            100.0 * (1.0 - after as f64 / before as f64),
            100.0 * total_ratio / n
        );
    }
}

fn bench(c: &mut Criterion) {
    node_reduction();
    let full = trees(64, Method::Full, 7);
    let grow = trees(64, Method::Grow, 7);
    let qa = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))".to_string();
    let mut g = c.benchmark_group("frontend");
    for (name, set) in [
        ("full-height-6", &full),
        ("grow-height-2..6", &grow),
        ("seed-qa", &vec![qa]),
    ] {
        let mut i = 0;
        g.bench_function(format!("parse+simplify+diff/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % set.len();
                let e = parse(black_box(&set[i])).unwrap();
                black_box(Function::new(&e))
            })
        });
    }
    let mut i = 0;
    g.bench_function("parse-only/full-height-6", |b| {
        b.iter(|| {
            i = (i + 1) % full.len();
            black_box(parse(black_box(&full[i])).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
