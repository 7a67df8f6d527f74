//! The fused kernels on a real GPU: every dtype, forward and backward,
//! over odd lengths and misaligned views, against the f64 reference, with
//! guard zones around every output.
//!
//! Without a GPU these tests print why and pass; `ACTFORGE_REQUIRE_GPU=1`
//! (set by scripts/gpu-check.sh) makes that a failure.

mod common;

use actforge::codegen::{
    dispatch_kernel_name, kernel_name, Direction, Dtype, Layout, MathMode, Module, Selection,
};
use actforge::diff::Function;
use actforge::ir::{eval_f64, parse, Expr};
use actforge::runtime::device::{
    launch_backward_with, launch_config, launch_forward_with, Gpu, Kernels,
};
use actforge::runtime::nvrtc::CompileOptions;
use actforge::runtime::KernelCache;
use common::{close, f32_well_conditioned, near_switch, parse_all};
use cudarc::driver::{CudaFunction, CudaStream, DeviceRepr, LaunchConfig, ValidAsZeroBits};
use std::sync::Arc;

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
const T5: &str = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";

fn gpu_or_skip() -> Option<Gpu> {
    match Gpu::open(0) {
        Ok(g) => Some(g),
        Err(e) => {
            assert!(
                !std::env::var("ACTFORGE_REQUIRE_GPU").is_ok_and(|v| v == "1"),
                "ACTFORGE_REQUIRE_GPU=1 but: {e}"
            );
            eprintln!("SKIPPED (no GPU): {e}");
            None
        }
    }
}

fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f64 * 0.618_033_988_749_895).fract() * 14.0 - 7.0) as f32)
        .collect()
}

fn store(v: &[f32], d: Dtype) -> Vec<u16> {
    d.encode16(v)
}

fn load(v: &[u16], d: Dtype) -> Vec<f32> {
    d.decode16(v)
}

fn check(
    e: &Expr,
    f: &Function,
    x: f32,
    g: Option<f32>,
    got: f32,
    dtype: Dtype,
    ctx: &str,
) -> usize {
    let xd = x as f64;
    if near_switch(&[(&e.graph, &[e.root]), (&f.graph, &[f.f, f.df])], xd) {
        return 0;
    }
    let (root, want) = match g {
        None => (f.f, eval_f64(&e.graph, e.root, xd)),
        Some(g) => (f.df, g as f64 * f.derivative(xd)),
    };
    if !want.is_finite() || !f32_well_conditioned(&f.graph, root, xd) {
        return 0;
    }
    let slack = match dtype {
        Dtype::F32 => 0.0,
        Dtype::Bf16 => 2f64.powi(-8),
        Dtype::F16 => 2f64.powi(-11),
    };
    let stored = match dtype {
        Dtype::F32 => want as f32,
        Dtype::Bf16 => half::bf16::from_f32(want as f32).to_f32(),
        Dtype::F16 => half::f16::from_f32(want as f32).to_f32(),
    };
    let got = got as f64;
    let ok = if stored.is_infinite() {
        got == stored as f64
    } else {
        close(got, want)
            || (got - want).abs() <= 1e-4 * want.abs() + 1e-5 + slack * want.abs() + 6e-8
    };
    assert!(ok, "{ctx}: x={x} got {got} want {want}");
    1
}

/// One forward and one backward launch on a view of host buffers.
struct Launch<'a> {
    s: &'a Arc<CudaStream>,
    fwd: &'a CudaFunction,
    bwd: &'a CudaFunction,
    cfg: LaunchConfig,
    id: Option<u32>,
    view: std::ops::Range<usize>,
}

impl Launch<'_> {
    /// Upload x, dy and the canary-filled outputs, run both kernels on the
    /// view, and download (y, dx) whole (guard zones included).
    fn run<T: DeviceRepr + ValidAsZeroBits + Clone + Default + Unpin>(
        &self,
        hx: &[T],
        hg: &[T],
        canary: &[T],
    ) -> (Vec<T>, Vec<T>) {
        let (s, v, n) = (self.s, self.view.clone(), self.view.len());
        let x = s.clone_htod(hx).unwrap();
        let g = s.clone_htod(hg).unwrap();
        let mut y = s.clone_htod(canary).unwrap();
        let mut dx = s.clone_htod(canary).unwrap();
        let xv = x.slice(v.clone());
        launch_forward_with(
            s,
            self.fwd,
            self.cfg,
            self.id,
            &xv,
            &mut y.slice_mut(v.clone()),
            n,
        )
        .unwrap();
        let (gv, mut dxv) = (g.slice(v.clone()), dx.slice_mut(v));
        launch_backward_with(s, self.bwd, self.cfg, self.id, &xv, &gv, &mut dxv, n).unwrap();
        (s.clone_dtoh(&y).unwrap(), s.clone_dtoh(&dx).unwrap())
    }
}

/// Run fwd and bwd of `f` in `dtype` over lengths × offsets; returns the
/// number of compared outputs.
fn exercise(gpu: &Gpu, k: &Kernels, e: &Expr, f: &Function, dtype: Dtype) -> usize {
    exercise_as(gpu, k, e, f, dtype, None)
}

/// [`exercise`] through the kernels of a dispatch module (`id` Some).
fn exercise_as(
    gpu: &Gpu,
    k: &Kernels,
    e: &Expr,
    f: &Function,
    dtype: Dtype,
    id: Option<u32>,
) -> usize {
    let s = &gpu.stream;
    let mut compared = 0;
    for &n in &[1usize, 3, 7, 8, 9, 33, 1000, 4097, 65_537] {
        for &off in &[0usize, 1, 2, 3, 4, 8] {
            let total = n + off + 64;
            let xs = inputs(n);
            let gs: Vec<f32> = (0..n).map(|i| 1.0 - (i % 5) as f32 * 0.3).collect();
            let mut hx = vec![0.0f32; total];
            let mut hg = vec![0.0f32; total];
            hx[off..off + n].copy_from_slice(&xs);
            hg[off..off + n].copy_from_slice(&gs);
            let canary = -12345.0f32;
            let cfg = launch_config(n, dtype, gpu.sm_count);
            let name = |dir| match id {
                None => kernel_name(f.hash, dir, dtype),
                Some(_) => dispatch_kernel_name(dir, dtype),
            };
            let fwd = k.get(&name(Direction::Fwd)).unwrap();
            let bwd = k.get(&name(Direction::Bwd)).unwrap();
            let ctx = format!("{} n={n} off={off}", dtype.name());
            let launch = Launch {
                s,
                fwd,
                bwd,
                cfg,
                id,
                view: off..off + n,
            };
            let (y, dx, xs_s) = if dtype == Dtype::F32 {
                let (y, dx) = launch.run(&hx, &hg, &vec![canary; total]);
                (y, dx, xs.clone())
            } else {
                let (y, dx) = launch.run(
                    &store(&hx, dtype),
                    &store(&hg, dtype),
                    &store(&vec![canary; total], dtype),
                );
                (
                    load(&y, dtype),
                    load(&dx, dtype),
                    load(&store(&xs, dtype), dtype),
                )
            };
            let c16 = match dtype {
                Dtype::F32 => canary,
                _ => load(&store(&[canary], dtype), dtype)[0],
            };
            for i in (0..off).chain(off + n..total) {
                assert_eq!(y[i], c16, "{ctx}: forward wrote outside its view at {i}");
                assert_eq!(dx[i], c16, "{ctx}: backward wrote outside its view at {i}");
            }
            let gs_s = if dtype == Dtype::F32 {
                gs.clone()
            } else {
                load(&store(&gs, dtype), dtype)
            };
            for i in 0..n {
                compared += check(e, f, xs_s[i], None, y[off + i], dtype, &ctx);
                compared += check(e, f, xs_s[i], Some(gs_s[i]), dx[off + i], dtype, &ctx);
            }
        }
    }
    compared
}

/// Approximate hardware math (the default): ex2/rcp/div.full on the GPU.
#[test]
fn fused_kernels_match_the_reference_on_the_gpu() {
    fused_kernels_match(MathMode::Approx);
}

/// Exact math: libm and IEEE division.
#[test]
fn exact_math_kernels_match_the_reference_on_the_gpu() {
    fused_kernels_match(MathMode::Exact);
}

fn fused_kernels_match(math: MathMode) {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    eprintln!("GPU: {} (sm_{}, {} SMs)", gpu.name, gpu.arch, gpu.sm_count);
    let sources = [
        QA,
        T5,
        "gelu_like(x)",
        "silu(x)",
        "safe_div(x, sin(x))",
        "mish(x)",
        "softplus(x)",
        "log1p_safe(x)",
    ];
    let parsed = parse_all(&sources);
    let mut m = Module::new(Selection {
        math,
        ..Selection::default()
    });
    for (_, f) in &parsed {
        m.add(f);
    }
    let (img, _) = KernelCache::global()
        .get_or_compile(&m.source(), "gpu-test.cu", &CompileOptions::cubin(gpu.arch))
        .unwrap();
    let k = Kernels::new(
        gpu.load(&img).unwrap(),
        m.kernels().into_iter().map(|k| k.name),
    )
    .unwrap();
    for ((e, f), src) in parsed.iter().zip(sources) {
        for dtype in Dtype::ALL {
            let c = exercise(&gpu, &k, e, f, dtype);
            assert!(
                c > 10_000,
                "{src} {} ({} math): only {c} outputs compared",
                dtype.name(),
                math.name()
            );
        }
    }
}

/// A dispatch module (one kernel per direction and dtype) computes each of
/// its formulas, selected by index, on the GPU as on the CPU.
#[test]
fn dispatch_modules_run_every_formula() {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    let parsed = parse_all(&[QA, T5, "gelu_like(x)", "safe_div(x, sin(x))", "mish(x)"]);
    let mut m = Module::new(Selection {
        layout: Layout::Dispatch,
        ..Selection::default()
    });
    for (_, f) in &parsed {
        m.add(f);
    }
    let (img, _) = KernelCache::global()
        .get_or_compile(
            &m.source(),
            "gpu-dispatch.cu",
            &CompileOptions::cubin(gpu.arch),
        )
        .unwrap();
    let k = Kernels::new(
        gpu.load(&img).unwrap(),
        m.kernels().into_iter().map(|k| k.name),
    )
    .unwrap();
    for (e, f) in &parsed {
        let id = m.index_of(f.hash).unwrap();
        for dtype in Dtype::ALL {
            assert!(exercise_as(&gpu, &k, e, f, dtype, Some(id)) > 10_000);
        }
    }
}

#[test]
fn ptx_fallback_loads_and_runs() {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    let e = parse(QA).unwrap();
    let f = Function::new(&e);
    let m = Module::single(&f);
    let (img, _) = KernelCache::global()
        .get_or_compile(
            &m.source(),
            "ptx-test.cu",
            &CompileOptions::ptx(80.min(gpu.arch)),
        )
        .unwrap();
    let k = Kernels::new(
        gpu.load(&img).unwrap(),
        m.kernels().into_iter().map(|k| k.name),
    )
    .unwrap();
    assert!(exercise(&gpu, &k, &e, &f, Dtype::F32) > 10_000);
}
