//! Profiling driver for the front end (parse + simplify + diff) on
//! height-6 random trees: `perf record cargo run --release --example profile_frontend`.
use actforge::{
    diff::Function,
    gp::{Method, PrimitiveSet, Tree},
    ir::parse,
};
use rand::SeedableRng;
fn main() {
    let set = PrimitiveSet::seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let fs: Vec<String> = (0..64)
        .map(|_| Tree::generate(&mut rng, &set, 6, 6, Method::Full).to_formula(&set))
        .collect();
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..300 {
        for f in &fs {
            let e = parse(f).unwrap();
            std::hint::black_box(Function::new(&e));
            n += 1;
        }
    }
    println!(
        "{:.1} µs per formula",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
