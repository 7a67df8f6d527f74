//! The fused activation as a candle op: values and gradients against the
//! composed chain of candle ops and the f64 reference, through
//! `Tensor::backward`, on odd shapes, non-contiguous inputs and every
//! storage dtype. On a CUDA build with a GPU the same checks run on the GPU.

mod common;

use actforge::diff::Function;
use actforge::gp::{PrimitiveSet, Tree};
use actforge::ir::{parse, Tape};
use actforge::op::{Activation, ComposedActivation, FusedActivation};
use candle_core::{DType, Device, Tensor, Var, D};
use common::{close, f32_well_conditioned, near_switch};
use rand::rngs::StdRng;
use rand::SeedableRng;

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
const T5: &str = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";

fn devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    if cfg!(feature = "cuda") {
        match Device::new_cuda(0) {
            Ok(d) => v.push(d),
            Err(e) => {
                assert!(
                    !std::env::var("ACTFORGE_REQUIRE_GPU").is_ok_and(|v| v == "1"),
                    "ACTFORGE_REQUIRE_GPU=1 but: {e}"
                );
                eprintln!("CUDA build without a usable GPU ({e}): CPU only");
            }
        }
    }
    v
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed) % 100_000) as f32 / 100_000.0) * 10.0 - 5.0)
        .collect()
}

/// Elementwise: fused vs reference for y and for dL/dx with L = Σ w·y.
fn check_elementwise(src: &str, dev: &Device) {
    let e = parse(src).unwrap();
    let f = Function::new(&e);
    let fused = FusedActivation::from_function(src, f.clone());
    let composed = ComposedActivation::from_function(src, f.clone());
    let n = 1031;
    let xs = values(n, 17);
    let ws: Vec<f32> = (0..n).map(|i| 1.0 - (i % 9) as f32 * 0.2).collect();
    let w = Tensor::new(ws.as_slice(), dev).unwrap();
    for (name, act) in [
        ("fused", Activation::Fused(fused)),
        ("composed", Activation::Composed(composed)),
    ] {
        let x = Var::new(xs.as_slice(), dev).unwrap();
        let y = act.forward(x.as_tensor()).unwrap();
        let loss = (&y * &w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let gx: Vec<f32> = match grads.get(x.as_tensor()) {
            Some(g) => g.to_vec1().unwrap(),
            // Only a constant formula may leave x out of the graph.
            None => {
                assert_eq!(
                    f.graph.const_value(f.df),
                    Some(0.0),
                    "{name} {src}: no gradient reaches x"
                );
                vec![0.0; n]
            }
        };
        let yv: Vec<f32> = y.to_vec1().unwrap();
        let mut compared = 0;
        for i in 0..n {
            let xd = xs[i] as f64;
            if near_switch(&[(&e.graph, &[e.root]), (&f.graph, &[f.f, f.df])], xd) {
                continue;
            }
            if f32_well_conditioned(&f.graph, f.f, xd) {
                let want = f.value(xd);
                assert!(
                    name != "fused" || close(yv[i] as f64, want),
                    "{name} {src} on {dev:?}: y({xd}) = {} vs {want}",
                    yv[i]
                );
                assert!(
                    (yv[i] as f64 - want).abs() <= 1e-3 * want.abs() + 1e-3,
                    "{name} {src}: y({xd}) = {} vs {want}",
                    yv[i]
                );
                compared += 1;
            }
            if f32_well_conditioned(&f.graph, f.df, xd) {
                let want = ws[i] as f64 * f.derivative(xd);
                let got = gx[i] as f64;
                assert!(
                    name != "fused" || close(got, want),
                    "{name} {src} on {dev:?}: dx({xd}) = {got} vs {want}"
                );
                assert!(
                    (got - want).abs() <= 1e-3 * want.abs() + 1e-3,
                    "{name} {src}: dx({xd}) = {got} vs {want}"
                );
            }
        }
        assert!(compared > n / 3, "{src}: only {compared} points compared");
    }
}

#[test]
fn fused_and_composed_agree_with_the_reference_on_seeds_and_primitives() {
    for dev in devices() {
        for src in [
            QA,
            T5,
            "gelu_like(x)",
            "gelu(x)",
            "silu(x)",
            "mish(x)",
            "softplus(x)",
            "safe_div(x, sin(x))",
            "sigmoid_boost(x)",
            "clamp(x, -1, 2) ^ 3",
        ] {
            check_elementwise(src, &dev);
        }
    }
}

#[test]
fn random_gp_formulas_agree() {
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(4);
    for dev in devices() {
        for _ in 0..24 {
            let src = Tree::ramped(&mut rng, &set, 1, 5).to_formula(&set);
            check_elementwise(&src, &dev);
        }
    }
}

/// A two-layer MLP with the activation in the middle; returns the loss
/// and the gradients of both weight matrices.
fn mlp(act: &Activation, dev: &Device) -> (f32, Vec<f32>, Vec<f32>) {
    let (b, d, h) = (5, 7, 11);
    let w1 = Var::from_tensor(
        &Tensor::new(values(d * h, 3).as_slice(), dev)
            .unwrap()
            .reshape((d, h))
            .unwrap()
            .affine(0.2, 0.0)
            .unwrap(),
    )
    .unwrap();
    let w2 = Var::from_tensor(
        &Tensor::new(values(h * 3, 9).as_slice(), dev)
            .unwrap()
            .reshape((h, 3))
            .unwrap()
            .affine(0.2, 0.0)
            .unwrap(),
    )
    .unwrap();
    let x = Tensor::new(values(b * d, 5).as_slice(), dev)
        .unwrap()
        .reshape((b, d))
        .unwrap();
    let hid = act.forward(&x.matmul(w1.as_tensor()).unwrap()).unwrap();
    let y = hid.matmul(w2.as_tensor()).unwrap();
    let loss = y.sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g1 = grads
        .get(w1.as_tensor())
        .expect("gradient reaches the weights below the activation");
    let g2 = grads
        .get(w2.as_tensor())
        .expect("gradient reaches the weights above the activation");
    (
        loss.to_scalar::<f32>().unwrap(),
        g1.flatten_all().unwrap().to_vec1().unwrap(),
        g2.flatten_all().unwrap().to_vec1().unwrap(),
    )
}

#[test]
fn gradients_reach_the_parameters_below_the_activation() {
    for dev in devices() {
        for src in [QA, T5, "gelu_like(x)"] {
            let (lf, g1f, g2f) = mlp(&Activation::parse(&format!("fused:{src}")).unwrap(), &dev);
            let (lc, g1c, g2c) = mlp(
                &Activation::parse(&format!("composed:{src}")).unwrap(),
                &dev,
            );
            assert!(
                (lf - lc).abs() <= 1e-4 * lc.abs() + 1e-4,
                "{src}: loss {lf} vs {lc}"
            );
            assert!(
                g1f.iter().any(|&g| g != 0.0),
                "{src}: no gradient below the activation (a CustomOp1 without bwd?)"
            );
            for (a, b) in g1f.iter().zip(&g1c).chain(g2f.iter().zip(&g2c)) {
                assert!(
                    (a - b).abs() <= 1e-3 * b.abs() + 1e-4,
                    "{src} on {dev:?}: gradient {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn builtin_gelu_and_gelu_like_formula_agree() {
    // candle's gelu is the tanh approximation: the same function as
    // gelu_like, which `Activation::Gelu` runs fused on the CPU.
    let x = Tensor::new(values(257, 1).as_slice(), &Device::Cpu).unwrap();
    let candle: Vec<f32> = x.gelu().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = Activation::parse("fused:gelu_like(x)")
        .unwrap()
        .forward(&x)
        .unwrap()
        .to_vec1()
        .unwrap();
    let a: Vec<f32> = Activation::Gelu.forward(&x).unwrap().to_vec1().unwrap();
    for ((p, q), c) in a.iter().zip(&b).zip(&candle) {
        assert!((c - q).abs() <= 1e-5 * q.abs() + 1e-5, "{c} vs {q}");
        assert_eq!(p, q, "GELU on the CPU is the fused gelu_like");
    }
    // Its gradient is candle's GELU's too.
    let v = Var::new(values(257, 2).as_slice(), &Device::Cpu).unwrap();
    let g1 = Activation::Gelu
        .forward(v.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g2 = v
        .as_tensor()
        .gelu()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let (g1, g2): (Vec<f32>, Vec<f32>) = (
        g1.get(v.as_tensor()).unwrap().to_vec1().unwrap(),
        g2.get(v.as_tensor()).unwrap().to_vec1().unwrap(),
    );
    for (p, q) in g1.iter().zip(&g2) {
        assert!((p - q).abs() <= 1e-4 * q.abs() + 1e-4, "{p} vs {q}");
    }
}

/// Tensors large enough to be split over the CPU thread pool (blocks of
/// 32K elements, the last one partial) give bit for bit the values of one
/// single-threaded pass of the evaluator, forward and backward.
#[test]
fn multi_threaded_cpu_passes_equal_one_pass() {
    let act = FusedActivation::new(QA).unwrap();
    let f = act.function();
    let fwd = Tape::new(&f.graph, &[f.f]);
    let bwd = Tape::new(&f.graph, &[f.df]);
    for n in [32 * 1024, 32 * 1024 + 1, 5 * 32 * 1024 + 77] {
        let xs = values(n, 11);
        let gs = values(n, 12);
        let x = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let g = Tensor::new(gs.as_slice(), &Device::Cpu).unwrap();
        let y: Vec<f32> = act.forward(&x).unwrap().to_vec1().unwrap();
        let dx: Vec<f32> = act.backward(&x, &g).unwrap().to_vec1().unwrap();
        let (mut y1, mut dx1) = (vec![0.0f32; n], vec![0.0f32; n]);
        fwd.map(&xs, &mut y1);
        bwd.map_mul(&xs, &gs, &mut dx1);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(bits(&y) == bits(&y1), "forward differs at n={n}");
        assert!(bits(&dx) == bits(&dx1), "backward differs at n={n}");
    }
}

#[test]
fn odd_shapes_and_non_contiguous_inputs() {
    let act = FusedActivation::new(QA).unwrap();
    for dev in devices() {
        for shape in [vec![1], vec![3, 5, 7], vec![2, 1, 33], vec![0, 4]] {
            let n: usize = shape.iter().product();
            let x = Tensor::new(values(n, 2).as_slice(), &dev)
                .unwrap()
                .reshape(shape.as_slice())
                .unwrap();
            let y = act.forward(&x).unwrap();
            assert_eq!(y.dims(), x.dims());
            let flat: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            for (xv, yv) in xs.iter().zip(&flat) {
                assert!(close(*yv as f64, act.function().value(*xv as f64)));
            }
        }
        // Transposed and narrowed views: same values as their contiguous copies.
        let base = Tensor::new(values(6 * 9, 8).as_slice(), &dev)
            .unwrap()
            .reshape((6, 9))
            .unwrap();
        for view in [
            base.t().unwrap(),
            base.narrow(1, 2, 5).unwrap(),
            base.t().unwrap().narrow(0, 1, 7).unwrap(),
        ] {
            assert!(!view.is_contiguous());
            let got: Vec<f32> = act
                .forward(&view)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want: Vec<f32> = act
                .forward(&view.contiguous().unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got, want);
            // ... and the backward through a view.
            let v = Var::from_tensor(&base).unwrap();
            let loss = act
                .forward(&v.as_tensor().t().unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            let g: Vec<f32> = loss
                .backward()
                .unwrap()
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let xs: Vec<f32> = base.flatten_all().unwrap().to_vec1().unwrap();
            for (xv, gv) in xs.iter().zip(&g) {
                assert!(
                    close(*gv as f64, act.function().derivative(*xv as f64)),
                    "{xv}: {gv}"
                );
            }
        }
    }
}

#[test]
fn sixteen_bit_storage_rounds_once() {
    for dev in devices() {
        for dtype in [DType::BF16, DType::F16] {
            for src in [QA, "silu(x)"] {
                let act = FusedActivation::new(src).unwrap();
                let x32 = Tensor::new(values(999, 4).as_slice(), &dev).unwrap();
                let x16 = x32.to_dtype(dtype).unwrap();
                let y16 = act.forward(&x16).unwrap();
                assert_eq!(y16.dtype(), dtype);
                // f32 math on the 16-bit inputs, rounded once, is what 16-bit gives.
                let y32 = act
                    .forward(&x16.to_dtype(DType::F32).unwrap())
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let a: Vec<f32> = y16.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
                let b: Vec<f32> = y32.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
                let diff = a.iter().zip(&b).filter(|(p, q)| p != q).count();
                assert!(
                    diff * 100 <= a.len(),
                    "{src} {dtype:?} on {dev:?}: {diff} of {} differ from f32-then-round",
                    a.len()
                );
                // The backward in 16 bits too.
                let g16 = act.backward(&x16, &x16.ones_like().unwrap()).unwrap();
                assert_eq!(g16.dtype(), dtype);
                let g: Vec<f32> = g16.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
                let xs: Vec<f32> = x16.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
                for (xv, gv) in xs.iter().zip(&g) {
                    let want = act.function().derivative(*xv as f64);
                    assert!(
                        (*gv as f64 - want).abs() <= 1e-2 * want.abs() + 1e-3,
                        "{src} {dtype:?}: f'({xv}) = {gv} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn unsupported_dtypes_are_errors_not_panics() {
    let act = FusedActivation::new("silu(x)").unwrap();
    let x = Tensor::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
    let err = act.forward(&x).unwrap_err().to_string();
    assert!(err.contains("f32, bf16 and f16"), "{err}");
    let _ = D::Minus1;
}

#[test]
fn activation_specs_parse_and_print() {
    assert_eq!(Activation::parse("gelu").unwrap().to_string(), "gelu");
    assert_eq!(
        Activation::parse("fused:silu(x)").unwrap().to_string(),
        "fused:silu(x)"
    );
    assert_eq!(
        Activation::parse("composed:silu(x)").unwrap().to_string(),
        "composed:silu(x)"
    );
    assert!(Activation::parse("relu").is_err());
    let e = Activation::parse("fused:safe_dvi(x, 1)")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `safe_div`?"), "{e}");
}
