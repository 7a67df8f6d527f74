//! The fused candle op against the composed chain of candle ops and
//! candle's built-in GELU: forward, backward (the fused backward op alone,
//! or autograd's chain) and forward + `Tensor::backward`, over tensor sizes
//! from 64K to 64M elements. Throughput is in bytes (read x, write y; the
//! backward also reads dy), so criterion prints GB/s.
//!
//!   cargo bench --bench candle_ops                      # CPU
//!   cargo bench --bench candle_ops --features cuda      # also the GPU, if present
//!   ACTFORGE_BENCH_MAX=4194304 cargo bench --bench candle_ops   # smaller sizes only
//!
//! GPU timings use `iter_custom` and synchronise the device before reading
//! the clock.

use std::time::{Duration, Instant};

use actforge::bench::bench_formulas;
use actforge::op::{Activation, ComposedActivation, FusedActivation};
use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn devices() -> Vec<(&'static str, Device)> {
    let mut v = vec![("cpu", Device::Cpu)];
    if let Ok(d) = Device::new_cuda(0) {
        v.push(("cuda", d));
    }
    v
}

fn timed(dev: &Device, iters: u64, mut f: impl FnMut()) -> Duration {
    dev.synchronize().unwrap();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    dev.synchronize().unwrap();
    t.elapsed()
}

fn bench(c: &mut Criterion) {
    let max: usize = std::env::var("ACTFORGE_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 26);
    let sizes: Vec<usize> = [1usize << 16, 1 << 20, 1 << 22, 1 << 24, 1 << 26]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    for (dname, dev) in devices() {
        for (fname, src) in bench_formulas() {
            let mut variants = vec![
                (
                    "fused",
                    Activation::Fused(FusedActivation::new(&src).unwrap()),
                ),
                (
                    "composed",
                    Activation::Composed(ComposedActivation::new(&src).unwrap()),
                ),
            ];
            if fname == "gelu_like" {
                variants.push(("builtin-gelu", Activation::Gelu));
            }
            for pass in ["fwd", "bwd", "fwdbwd"] {
                let mut g = c.benchmark_group(format!("{dname}/{fname}/{pass}"));
                g.sample_size(10)
                    .warm_up_time(Duration::from_millis(300))
                    .measurement_time(Duration::from_secs(2));
                for &n in &sizes {
                    let bytes = match pass {
                        "fwd" => 8 * n,
                        "bwd" => 12 * n,
                        _ => 20 * n,
                    };
                    g.throughput(Throughput::Bytes(bytes as u64));
                    let x = Tensor::rand(-4f32, 4f32, n, &dev).unwrap();
                    let dy = Tensor::rand(0.5f32, 1.5f32, n, &dev).unwrap();
                    for (vname, act) in &variants {
                        g.bench_with_input(BenchmarkId::new(*vname, n), &n, |b, _| {
                            b.iter_custom(|iters| match pass {
                                "fwd" => timed(&dev, iters, || drop(act.forward(&x).unwrap())),
                                "bwd" => match act {
                                    Activation::Fused(f) => {
                                        timed(&dev, iters, || drop(f.backward(&x, &dy).unwrap()))
                                    }
                                    _ => {
                                        // Autograd's backward chain alone: forward outside the clock.
                                        let var = Var::from_tensor(&x).unwrap();
                                        let mut total = Duration::ZERO;
                                        for _ in 0..iters {
                                            let y = act.forward(var.as_tensor()).unwrap();
                                            total += timed(&dev, 1, || drop(y.backward().unwrap()));
                                        }
                                        total
                                    }
                                },
                                _ => {
                                    let var = Var::from_tensor(&x).unwrap();
                                    timed(&dev, iters, || {
                                        drop(
                                            act.forward(var.as_tensor())
                                                .unwrap()
                                                .backward()
                                                .unwrap(),
                                        )
                                    })
                                }
                            })
                        });
                    }
                }
                g.finish();
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
