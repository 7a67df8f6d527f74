//! The fused f32 CPU evaluator (one pass over cache-sized chunks) against a
//! plain per-node loop (one full-size temporary per node), side by side;
//! also the fused backward (`dy · f'(x)`).
//!
//!   cargo bench --bench evaluator

use std::hint::black_box;

use actforge::bench::bench_formulas;
use actforge::diff::Function;
use actforge::ir::{eval_per_node, parse, Tape};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: usize = 1 << 20;

fn bench(c: &mut Criterion) {
    let xs: Vec<f32> = (0..N).map(|i| (i as f32 / N as f32) * 12.0 - 6.0).collect();
    let mut out = vec![0.0f32; N];
    let ones = vec![1.0f32; N];
    let mut g = c.benchmark_group("evaluator-1M");
    g.throughput(Throughput::Bytes((2 * N * 4) as u64));
    g.sample_size(20);
    for (name, src) in bench_formulas() {
        let f = Function::new(&parse(&src).unwrap());
        let tape = Tape::new(&f.graph, &[f.f]);
        let mut scratch = tape.scratch();
        g.bench_function(format!("fused-tape/{name}"), |b| {
            b.iter(|| black_box(tape.map_with(&mut scratch, black_box(&xs), &mut out)))
        });
        g.bench_function(format!("per-node/{name}"), |b| {
            b.iter(|| black_box(eval_per_node(&f.graph, f.f, black_box(&xs))))
        });
        // The fused backward pass: dx = dy · f'(x), recomputed from x.
        let dtape = Tape::new(&f.graph, &[f.df]);
        let mut dscratch = dtape.scratch();
        g.bench_function(format!("fused-tape-bwd/{name}"), |b| {
            b.iter(|| black_box(dtape.map_mul_with(&mut dscratch, black_box(&xs), &ones, &mut out)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
