//! Cost of the GP genome's per-candidate work: generating a tree, one
//! varAnd step over a population, the canonical key (parse + simplify +
//! hash) and the functional fingerprint (tape compile + 1,217 probe
//! points) of one formula.
//!
//!   cargo bench --bench gp

use std::hint::black_box;

use actforge::gp::{
    var_and, Canonical, Fingerprint, Limit, Mutation, PrimitiveSet, Prng, Tree, Variation,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let set = PrimitiveSet::seed();
    let mut rng = Prng::seed(2026);
    let trees: Vec<Tree> = (0..64)
        .map(|_| Tree::ramped(&mut rng, &set, 2, 6))
        .collect();
    let texts: Vec<String> = trees.iter().map(|t| t.to_formula(&set)).collect();
    let keys: Vec<Canonical> = texts
        .iter()
        .map(|t| Canonical::parse(t, set.library()).unwrap())
        .collect();
    let v = Variation::new(0.5, 0.2, vec![(Mutation::UNIFORM, 1.0)], Limit::default()).unwrap();
    let mut g = c.benchmark_group("gp");
    g.bench_function("ramped-2..6/tree", |b| {
        b.iter(|| black_box(Tree::ramped(&mut rng, &set, 2, 6)))
    });
    g.bench_function("var_and/64-trees", |b| {
        b.iter(|| black_box(var_and(&mut rng, &set, &trees, &v)))
    });
    let mut i = 0;
    g.bench_function("canonical-key/formula", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            black_box(
                Canonical::parse(black_box(&texts[i]), set.library())
                    .unwrap()
                    .hash,
            )
        })
    });
    g.bench_function("fingerprint/formula", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(Fingerprint::of(black_box(&keys[i].expr)).bucket())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
