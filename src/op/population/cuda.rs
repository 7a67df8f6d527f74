//! CUDA path of the population activation (feature `cuda`): the
//! population kernels of the members' dispatch module
//! ([`super::PopulationActivation::module`]), compiled through the kernel
//! cache, loaded once per (context, dtype, formulas) and launched on
//! candle's stream, one launch per direction for every [`MAX_SLICES`]
//! slices ([`super::launches`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cuda_backend::{CudaDevice, CudaStorageSlice};
use candle_core::{CudaStorage, Layout, Shape};
use cudarc::driver::{CudaSlice, CudaView, DeviceRepr};

use super::{launches, Members};
use crate::codegen::{population_kernel_name, Direction, Dtype, MAX_SLICES};
use crate::op::cuda::{contiguous, msg, range, Loaded};
use crate::runtime::device::{
    compile_and_load, launch_population_backward, launch_population_forward, population_config,
    Slices,
};

/// (context, dtype, the formulas' hashes in module order).
type Key = (usize, Dtype, Vec<u64>);

/// Loaded population modules. A search makes a new population per
/// generation: past a few dozen the map is emptied (a reload costs a
/// module load, the compile stays in the kernel cache).
fn registry() -> &'static Mutex<HashMap<Key, Arc<Loaded>>> {
    static LOADED: OnceLock<Mutex<HashMap<Key, Arc<Loaded>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

const KEEP_MODULES: usize = 32;

fn loaded(m: &Members, dev: &CudaDevice, dtype: Dtype) -> candle_core::Result<Arc<Loaded>> {
    let stream = dev.cuda_stream();
    let ctx = stream.context().clone();
    let hashes = m.formulas.iter().map(|f| f.function.hash).collect();
    let key = (ctx.cu_ctx() as usize, dtype, hashes);
    if let Some(l) = registry().lock().expect("module map").get(&key) {
        return Ok(l.clone());
    }
    let module =
        crate::codegen::Module::generation(vec![dtype], m.formulas.iter().map(|f| &f.function));
    let (kernels, sm_count) = compile_and_load(&ctx, &module, "generation.cu").map_err(msg)?;
    let l = Arc::new(Loaded { kernels, sm_count });
    let mut map = registry().lock().expect("module map");
    if map.len() >= KEEP_MODULES {
        map.clear();
    }
    map.insert(key, l.clone());
    Ok(l)
}

fn slices_of(ids: &[u32; MAX_SLICES]) -> Slices {
    Slices { id: *ids }
}

/// The forward over `x` (`P` slices of `per` elements), into a fresh
/// buffer: one launch per [`MAX_SLICES`] slices.
fn fwd_typed<T: DeviceRepr>(
    m: &Members,
    dev: &CudaDevice,
    dtype: Dtype,
    x: CudaView<'_, T>,
    per: usize,
) -> candle_core::Result<CudaSlice<T>> {
    let n = x.len();
    // SAFETY: every element is written by the launches below before the
    // tensor is handed out (n = 0: one element, never read).
    let mut y = unsafe { dev.alloc::<T>(n.max(1)) }?;
    if n == 0 {
        return Ok(y);
    }
    let l = loaded(m, dev, dtype)?;
    let f = l
        .kernels
        .get(&population_kernel_name(Direction::Fwd, dtype))
        .map_err(msg)?;
    for (r, ids) in launches(&m.ids, MAX_SLICES) {
        let cfg = population_config(per, r.len(), dtype, l.sm_count);
        let (a, b) = (r.start * per, r.end * per);
        let xs = x.slice(a..b);
        let mut ys = y.slice_mut(a..b);
        launch_population_forward(
            &dev.cuda_stream(),
            f,
            cfg,
            &slices_of(&ids),
            &xs,
            &mut ys,
            per,
        )
        .map_err(msg)?;
    }
    Ok(y)
}

/// The backward over (`x`, `g`), into a fresh buffer.
fn bwd_typed<T: DeviceRepr>(
    m: &Members,
    dev: &CudaDevice,
    dtype: Dtype,
    x: CudaView<'_, T>,
    g: CudaView<'_, T>,
    per: usize,
) -> candle_core::Result<CudaSlice<T>> {
    let n = x.len();
    // SAFETY: as in the forward: the launches write every element.
    let mut dx = unsafe { dev.alloc::<T>(n.max(1)) }?;
    if n == 0 {
        return Ok(dx);
    }
    let l = loaded(m, dev, dtype)?;
    let f = l
        .kernels
        .get(&population_kernel_name(Direction::Bwd, dtype))
        .map_err(msg)?;
    for (r, ids) in launches(&m.ids, MAX_SLICES) {
        let cfg = population_config(per, r.len(), dtype, l.sm_count);
        let (a, b) = (r.start * per, r.end * per);
        let (xs, gs) = (x.slice(a..b), g.slice(a..b));
        let mut ds = dx.slice_mut(a..b);
        launch_population_backward(
            &dev.cuda_stream(),
            f,
            cfg,
            &slices_of(&ids),
            &xs,
            &gs,
            &mut ds,
            per,
        )
        .map_err(msg)?;
    }
    Ok(dx)
}

/// Zero-element tensors got a one-element buffer (CUDA cannot allocate
/// zero bytes); hand candle an empty storage instead.
fn trim(s: CudaStorage, n: usize) -> candle_core::Result<CudaStorage> {
    if n > 0 {
        return Ok(s);
    }
    s.device().zeros_impl(&Shape::from(0usize), s.dtype())
}

pub(crate) fn forward(
    m: &Members,
    storage: &CudaStorage,
    layout: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = storage.device().clone();
    let copy = contiguous(storage, layout)?;
    let s = copy.as_ref().unwrap_or(storage);
    let (a, b) = range(layout, copy.is_some());
    let per = m.per(b - a, layout.shape())?;
    let slice = match &s.slice {
        CudaStorageSlice::F32(v) => {
            CudaStorageSlice::F32(fwd_typed(m, &dev, Dtype::F32, v.slice(a..b), per)?)
        }
        CudaStorageSlice::BF16(v) => {
            CudaStorageSlice::BF16(fwd_typed(m, &dev, Dtype::Bf16, v.slice(a..b), per)?)
        }
        CudaStorageSlice::F16(v) => {
            CudaStorageSlice::F16(fwd_typed(m, &dev, Dtype::F16, v.slice(a..b), per)?)
        }
        _ => return Err(crate::op::dtype::unsupported(s.dtype())),
    };
    let out = trim(CudaStorage { slice, device: dev }, b - a)?;
    Ok((out, layout.shape().clone()))
}

pub(crate) fn backward(
    m: &Members,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    if l1.shape() != l2.shape() {
        return Err(msg(format!(
            "population backward: x is {:?} but the gradient is {:?}",
            l1.shape(),
            l2.shape()
        )));
    }
    let dev = s1.device().clone();
    let (c1, c2) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
    let (x, g) = (c1.as_ref().unwrap_or(s1), c2.as_ref().unwrap_or(s2));
    let (a1, b1) = range(l1, c1.is_some());
    let (a2, b2) = range(l2, c2.is_some());
    let per = m.per(b1 - a1, l1.shape())?;
    let slice = match (&x.slice, &g.slice) {
        (CudaStorageSlice::F32(x), CudaStorageSlice::F32(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::F32(bwd_typed(m, &dev, Dtype::F32, x, g, per)?)
        }
        (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::BF16(bwd_typed(m, &dev, Dtype::Bf16, x, g, per)?)
        }
        (CudaStorageSlice::F16(x), CudaStorageSlice::F16(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::F16(bwd_typed(m, &dev, Dtype::F16, x, g, per)?)
        }
        _ => {
            return Err(msg(format!(
                "population backward supports matching f32, bf16 or f16 tensors; got {:?} and {:?}",
                x.dtype(),
                g.dtype()
            )))
        }
    };
    let out = trim(CudaStorage { slice, device: dev }, b1 - a1)?;
    Ok((out, l1.shape().clone()))
}
