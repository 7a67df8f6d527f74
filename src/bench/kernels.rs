//! Kernel-level GPU benchmark: a device-to-device copy (the bandwidth
//! ceiling), the fused forward and backward kernels, and the composed
//! baseline (one kernel per op, generated the same way), measured side by
//! side on one device; also the same formula through the dispatch kernels
//! of a 33-formula module (what a GP generation compiles), to measure what
//! the dispatch layout costs at run time. Results are checked against the CPU reference
//! before anything is timed.

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};

use super::{Pass, Row, Variant};
use crate::codegen::composed::{Composed, Operand};
use crate::codegen::{
    dispatch_kernel_name, kernel_name, Direction, Dtype, Layout, Module, Selection,
};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::eval_f64;
use crate::runtime::device::{
    launch_backward_with, launch_config, launch_forward_with, Gpu, Kernels,
};
use crate::runtime::nvrtc::CompileOptions;
use crate::runtime::KernelCache;

fn cuda(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// Device buffers of the benchmark in one storage type.
struct Buffers<T> {
    x: CudaSlice<T>,
    dy: CudaSlice<T>,
    y: CudaSlice<T>,
    dx: CudaSlice<T>,
    steps: Vec<CudaSlice<T>>,
}

/// Time `iters` runs of `f` (after one warm-up): seconds per run, one
/// sample per run, from CUDA events recorded on the stream between runs
/// (the GPU's own clock: no host synchronisation between runs).
fn time(
    stream: &std::sync::Arc<CudaStream>,
    iters: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    f()?;
    stream.synchronize().map_err(|e| cuda("synchronize", e))?;
    let mark = || {
        stream
            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| cuda("record event", e))
    };
    let mut marks = Vec::with_capacity(iters + 1);
    marks.push(mark()?);
    for _ in 0..iters {
        f()?;
        marks.push(mark()?);
    }
    stream.synchronize().map_err(|e| cuda("synchronize", e))?;
    marks
        .windows(2)
        .map(|w| {
            w[0].elapsed_ms(&w[1])
                .map(|ms| ms as f64 * 1e-3)
                .map_err(|e| cuda("event time", e))
        })
        .collect()
}

/// Other formulas in the dispatch module the bench times (a generation).
const DISPATCH_NEIGHBOURS: usize = 32;

pub struct KernelBench<'a> {
    pub function: &'a Function,
    pub dtype: Dtype,
    pub elems: usize,
    pub iters: usize,
}

/// Run the benchmark on `gpu`; rows for copy, fused and composed.
pub fn run(gpu: &Gpu, spec: &KernelBench) -> Result<Vec<Row>> {
    super::check_sizes(spec.elems, spec.iters)?;
    match spec.dtype {
        Dtype::F32 => run_typed::<f32>(gpu, spec, |v| v.to_vec(), |v| v.to_vec()),
        d => run_typed::<u16>(gpu, spec, move |v| d.encode16(v), move |b| d.decode16(b)),
    }
}

fn run_typed<T>(
    gpu: &Gpu,
    spec: &KernelBench,
    store: impl Fn(&[f32]) -> Vec<T>,
    load: impl Fn(&[T]) -> Vec<f32>,
) -> Result<Vec<Row>>
where
    T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy + Default,
{
    let f = spec.function;
    let (n, dtype) = (spec.elems, spec.dtype);
    let stream = &gpu.stream;
    let cache = KernelCache::global();
    let opts = CompileOptions::cubin(gpu.arch);

    let mut m = Module::new(Selection {
        dtypes: vec![dtype],
        ..Selection::default()
    });
    m.add(f);
    let (img, _) = cache.get_or_compile(&m.source(), "fused.cu", &opts)?;
    let fused = Kernels::new(gpu.load(&img)?, m.kernels().into_iter().map(|k| k.name))?;
    // The same formula in a dispatch module the size of a GP generation,
    // in the middle of it (the switch has cases on both sides).
    let mut dm = Module::new(Selection {
        dtypes: vec![dtype],
        layout: Layout::Dispatch,
        ..Selection::default()
    });
    let others = super::compile::sample_formulas(DISPATCH_NEIGHBOURS, 7);
    let (before, after) = others.split_at(DISPATCH_NEIGHBOURS / 2);
    for g in before.iter().chain([f]).chain(after) {
        dm.add(g);
    }
    let id = dm.index_of(f.hash).expect("added");
    let (img, _) = cache.get_or_compile(&dm.source(), "dispatch.cu", &opts)?;
    let disp = Kernels::new(gpu.load(&img)?, dm.kernels().into_iter().map(|k| k.name))?;
    let cf = Composed::new(&f.graph, f.f, f.hash, "fwd", dtype);
    let cb = Composed::backward(&f.graph, f.df, f.hash, dtype);
    let mut ck = Vec::new();
    for c in [&cf, &cb] {
        let (img, _) = cache.get_or_compile(&c.source, "composed.cu", &opts)?;
        ck.push(Kernels::new(
            gpu.load(&img)?,
            c.steps.iter().map(|s| s.kernel.clone()),
        )?);
    }

    // Inputs: x spread over [-4, 4], dy around 1.
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i as f64 * 0.618_033_988_749_895).fract() * 8.0 - 4.0) as f32)
        .collect();
    let gs: Vec<f32> = (0..n).map(|i| 1.0 - (i % 7) as f32 * 0.1).collect();
    let steps_needed = cf.steps.len().max(cb.steps.len());
    let mut b = Buffers {
        x: stream
            .clone_htod(&store(&xs))
            .map_err(|e| cuda("upload x", e))?,
        dy: stream
            .clone_htod(&store(&gs))
            .map_err(|e| cuda("upload dy", e))?,
        y: stream.alloc_zeros::<T>(n).map_err(|e| cuda("alloc y", e))?,
        dx: stream
            .alloc_zeros::<T>(n)
            .map_err(|e| cuda("alloc dx", e))?,
        steps: (0..steps_needed)
            .map(|_| stream.alloc_zeros::<T>(n))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| cuda("alloc temporaries", e))?,
    };
    let cfg = launch_config(n, dtype, gpu.sm_count);
    // The fused kernels, per formula and through the dispatch module:
    // (variant, label, kernels, forward name, backward name, dispatch id).
    let fused_runs = [
        (
            Variant::FusedKernel,
            "fused",
            &fused,
            kernel_name(f.hash, Direction::Fwd, dtype),
            kernel_name(f.hash, Direction::Bwd, dtype),
            None,
        ),
        (
            Variant::DispatchKernel,
            "dispatch",
            &disp,
            dispatch_kernel_name(Direction::Fwd, dtype),
            dispatch_kernel_name(Direction::Bwd, dtype),
            Some(id),
        ),
    ];
    let run_fwd = |b: &mut Buffers<T>, k: &Kernels, name: &str, id| -> Result<()> {
        let (xv, mut yv) = (b.x.slice(..), b.y.slice_mut(..));
        launch_forward_with(stream, k.get(name)?, cfg, id, &xv, &mut yv, n)
    };
    let run_bwd = |b: &mut Buffers<T>, k: &Kernels, name: &str, id| -> Result<()> {
        let (xv, gv, mut dv) = (b.x.slice(..), b.dy.slice(..), b.dx.slice_mut(..));
        launch_backward_with(stream, k.get(name)?, cfg, id, &xv, &gv, &mut dv, n)
    };
    let run_chain = |b: &mut Buffers<T>, c: &Composed, k: &Kernels| -> Result<()> {
        for (i, step) in c.steps.iter().enumerate() {
            let (before, rest) = b.steps.split_at_mut(i);
            let out = &mut rest[0];
            let pick = |o: Option<&Operand>| -> Option<u64> {
                o.map(|o| match o {
                    Operand::Input => ptr(stream, &b.x),
                    Operand::Grad => ptr(stream, &b.dy),
                    Operand::Step(s) => ptr(stream, &before[*s]),
                })
            };
            let (a, bb, c3) = (
                pick(step.operands.first()),
                pick(step.operands.get(1)),
                pick(step.operands.get(2)),
            );
            crate::runtime::device::launch_composed_step(
                stream,
                k.get(&step.kernel)?,
                cfg_scalar(n, gpu.sm_count),
                [a, bb, c3],
                out,
                n,
            )?;
        }
        Ok(())
    };

    // Correctness first: every variant against the f64 reference.
    let download = |s: &CudaSlice<T>| -> Result<Vec<f32>> {
        Ok(load(
            &stream.clone_dtoh(s).map_err(|e| cuda("download", e))?,
        ))
    };
    let xs_stored = load(&store(&xs));
    let gs_stored = load(&store(&gs));
    for (_, label, k, fwd, bwd, id) in &fused_runs {
        run_fwd(&mut b, k, fwd, *id)?;
        run_bwd(&mut b, k, bwd, *id)?;
        let (y, dx) = (download(&b.y)?, download(&b.dx)?);
        verify(f, &xs_stored, &gs_stored, &y, &dx, dtype, label)?;
    }
    run_chain(&mut b, &cf, &ck[0])?;
    let cy = download(&b.steps[cf.steps.len() - 1])?;
    run_chain(&mut b, &cb, &ck[1])?;
    let cdx = download(&b.steps[cb.steps.len() - 1])?;
    verify(f, &xs_stored, &gs_stored, &cy, &cdx, dtype, "composed")?;

    let size = dtype.size();
    let it = spec.iters;
    let row = |variant, (pass, traffic, samples): (Pass, usize, Vec<f64>)| {
        Row::from_samples(variant, pass, n, traffic * n * size, &samples)
    };
    let copy = time(stream, it, || {
        let (src, dst) = (&b.x, &mut b.y);
        stream.memcpy_dtod(src, dst).map_err(|e| cuda("copy", e))
    })?;
    let mut rows = vec![row(Variant::Copy, (Pass::Fwd, 2, copy))];
    for (variant, _, k, fwd, bwd, id) in &fused_runs {
        let t = passes(stream, it, &mut b, &|b| run_fwd(b, k, fwd, *id), &|b| {
            run_bwd(b, k, bwd, *id)
        })?;
        rows.extend(t.map(|p| row(*variant, p)));
    }
    let t = passes(stream, it, &mut b, &|b| run_chain(b, &cf, &ck[0]), &|b| {
        run_chain(b, &cb, &ck[1])
    })?;
    rows.extend(t.map(|p| row(Variant::ComposedKernels, p)));
    Ok(rows)
}

/// Forward, backward and both, timed: (pass, tensors of minimal traffic
/// (x and y, and dy backward), seconds of each run).
fn passes<B>(
    stream: &std::sync::Arc<CudaStream>,
    iters: usize,
    b: &mut B,
    fwd: &dyn Fn(&mut B) -> Result<()>,
    bwd: &dyn Fn(&mut B) -> Result<()>,
) -> Result<[(Pass, usize, Vec<f64>); 3]> {
    Ok([
        (Pass::Fwd, 2, time(stream, iters, || fwd(b))?),
        (Pass::Bwd, 3, time(stream, iters, || bwd(b))?),
        (
            Pass::FwdBwd,
            5,
            time(stream, iters, || {
                fwd(b)?;
                bwd(b)
            })?,
        ),
    ])
}

fn ptr<T>(stream: &std::sync::Arc<CudaStream>, s: &CudaSlice<T>) -> u64 {
    let (p, _guard) = s.device_ptr(stream);
    p
}

fn cfg_scalar(n: usize, sms: u32) -> cudarc::driver::LaunchConfig {
    // Composed kernels are scalar: one element per thread per iteration.
    launch_config(n * 4, Dtype::F32, sms)
}

/// Compare device results with the f64 reference (PRIMITIVES.md tolerance
/// plus one rounding of the storage type), on a sample of points.
fn verify(
    f: &Function,
    xs: &[f32],
    gs: &[f32],
    y: &[f32],
    dx: &[f32],
    dtype: Dtype,
    what: &str,
) -> Result<()> {
    let slack = match dtype {
        Dtype::F32 => 0.0,
        Dtype::Bf16 => 2f64.powi(-8),
        Dtype::F16 => 2f64.powi(-11),
    };
    let step = (xs.len() / 4096).max(1);
    let mut bad = 0usize;
    let mut first = String::new();
    for i in (0..xs.len()).step_by(step) {
        let x = xs[i] as f64;
        let want = eval_f64(&f.graph, f.f, x);
        let dwant = gs[i] as f64 * f.derivative(x);
        for (got, want, which) in [(y[i] as f64, want, "y"), (dx[i] as f64, dwant, "dx")] {
            if !want.is_finite() {
                continue;
            }
            let tol = 1e-3 * want.abs() + 1e-4 + slack * want.abs();
            if (got - want).abs() > tol {
                bad += 1;
                if first.is_empty() {
                    first = format!("{which}({x}) = {got}, reference {want}");
                }
            }
        }
    }
    if bad > 0 {
        return Err(Error::Cuda(format!(
            "{what} kernels disagree with the CPU reference at {bad} sampled points, e.g. {first}"
        )));
    }
    Ok(())
}
