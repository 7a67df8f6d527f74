//! CUDA paths of the fused ops (feature `cuda`). The formula's kernels are
//! compiled for the tensor's device and loaded into candle's CUDA context
//! once per (context, dtype) by [`compile_and_load`] (the kernel cache and
//! the arch fallback live there), and launched on candle's stream through
//! [`crate::runtime::device`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cuda_backend::{CudaDevice, CudaStorageSlice};
use candle_core::{CudaStorage, Layout, Shape};
use cudarc::driver::{CudaSlice, CudaView};

use super::dtype::unsupported;
use crate::codegen::{kernel_name, Direction, Dtype, Module, Selection};
use crate::diff::Function;
use crate::runtime::device::{
    compile_and_load, launch_backward, launch_config, launch_forward, Kernels,
};

pub(crate) fn msg(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// A compiled module loaded into a context, with that device's SM count
/// (for launch configs). Shared with the population op.
pub(crate) struct Loaded {
    pub(crate) kernels: Kernels,
    pub(crate) sm_count: u32,
}

/// Kernels of one formula, loaded per CUDA context and dtype.
#[derive(Default)]
pub struct CudaKernels {
    loaded: Mutex<HashMap<(usize, Dtype), Arc<Loaded>>>,
}

fn loaded(
    function: &Function,
    kernels: &CudaKernels,
    dev: &CudaDevice,
    dtype: Dtype,
) -> candle_core::Result<Arc<Loaded>> {
    let stream = dev.cuda_stream();
    let ctx = stream.context().clone();
    let key = (ctx.cu_ctx() as usize, dtype);
    if let Some(l) = kernels.loaded.lock().expect("kernel map").get(&key) {
        return Ok(l.clone());
    }
    let mut m = Module::new(Selection {
        dtypes: vec![dtype],
        ..Selection::default()
    });
    m.add(function);
    let (module, sm_count) = compile_and_load(&ctx, &m, "fused.cu").map_err(msg)?;
    let l = Arc::new(Loaded {
        kernels: module,
        sm_count,
    });
    kernels
        .loaded
        .lock()
        .expect("kernel map")
        .insert(key, l.clone());
    Ok(l)
}

/// A contiguous copy when the layout is not contiguous.
pub(crate) fn contiguous(s: &CudaStorage, l: &Layout) -> candle_core::Result<Option<CudaStorage>> {
    if l.is_contiguous() {
        return Ok(None);
    }
    let mut dst = s.device().zeros_impl(l.shape(), s.dtype())?;
    s.copy_strided_src(&mut dst, 0, l)?;
    Ok(Some(dst))
}

/// The element range to read: all of a contiguous copy, else the
/// layout's own offsets.
pub(crate) fn range(l: &Layout, copied: bool) -> (usize, usize) {
    if copied {
        (0, l.shape().elem_count())
    } else {
        l.contiguous_offsets().expect("checked contiguous")
    }
}

/// The forward kernel of `dtype` (compiled and loaded on first use) over
/// `x`, into a fresh buffer.
fn fwd_typed<T: cudarc::driver::DeviceRepr>(
    function: &Function,
    kernels: &CudaKernels,
    dev: &CudaDevice,
    dtype: Dtype,
    x: CudaView<'_, T>,
    n: usize,
) -> candle_core::Result<CudaSlice<T>> {
    let l = loaded(function, kernels, dev, dtype)?;
    let name = kernel_name(function.hash, Direction::Fwd, dtype);
    // SAFETY: uninitialised device memory is never read: the forward kernel
    // writes all `n` elements before the tensor is handed out (n = 0: one
    // element, never read).
    let mut y = unsafe { dev.alloc::<T>(n.max(1)) }?;
    if n > 0 {
        let f = l.kernels.get(&name).map_err(msg)?;
        launch_forward(
            &dev.cuda_stream(),
            f,
            launch_config(n, dtype, l.sm_count),
            &x,
            &mut y.slice_mut(..n),
            n,
        )
        .map_err(msg)?;
    }
    Ok(y)
}

pub(crate) fn forward(
    function: &Function,
    kernels: &CudaKernels,
    storage: &CudaStorage,
    layout: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = storage.device().clone();
    let copy = contiguous(storage, layout)?;
    let s = copy.as_ref().unwrap_or(storage);
    let (a, b) = range(layout, copy.is_some());
    let n = b - a;
    let slice = match &s.slice {
        CudaStorageSlice::F32(v) => CudaStorageSlice::F32(fwd_typed(
            function,
            kernels,
            &dev,
            Dtype::F32,
            v.slice(a..b),
            n,
        )?),
        CudaStorageSlice::BF16(v) => CudaStorageSlice::BF16(fwd_typed(
            function,
            kernels,
            &dev,
            Dtype::Bf16,
            v.slice(a..b),
            n,
        )?),
        CudaStorageSlice::F16(v) => CudaStorageSlice::F16(fwd_typed(
            function,
            kernels,
            &dev,
            Dtype::F16,
            v.slice(a..b),
            n,
        )?),
        _ => return Err(unsupported(s.dtype())),
    };
    let out = CudaStorage { slice, device: dev };
    let out = trim(out, n)?;
    Ok((out, layout.shape().clone()))
}

/// Zero-element tensors got a one-element buffer (CUDA cannot allocate
/// zero bytes); hand candle an empty storage instead.
fn trim(s: CudaStorage, n: usize) -> candle_core::Result<CudaStorage> {
    if n > 0 {
        return Ok(s);
    }
    s.device().zeros_impl(&Shape::from(0usize), s.dtype())
}

/// The backward kernel of `dtype` over (`x`, `g`), into a fresh buffer.
fn bwd_typed<T: cudarc::driver::DeviceRepr>(
    function: &Function,
    kernels: &CudaKernels,
    dev: &CudaDevice,
    dtype: Dtype,
    x: CudaView<'_, T>,
    g: CudaView<'_, T>,
    n: usize,
) -> candle_core::Result<CudaSlice<T>> {
    let l = loaded(function, kernels, dev, dtype)?;
    let name = kernel_name(function.hash, Direction::Bwd, dtype);
    // SAFETY: as in the forward: the backward kernel writes all `n`
    // elements before they can be read.
    let mut dx = unsafe { dev.alloc::<T>(n.max(1)) }?;
    if n > 0 {
        let f = l.kernels.get(&name).map_err(msg)?;
        launch_backward(
            &dev.cuda_stream(),
            f,
            launch_config(n, dtype, l.sm_count),
            &x,
            &g,
            &mut dx.slice_mut(..n),
            n,
        )
        .map_err(msg)?;
    }
    Ok(dx)
}

pub(crate) fn backward(
    function: &Function,
    kernels: &CudaKernels,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    if l1.shape() != l2.shape() {
        return Err(msg(format!(
            "fused backward: x is {:?} but the gradient is {:?}",
            l1.shape(),
            l2.shape()
        )));
    }
    let dev = s1.device().clone();
    let (c1, c2) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
    let (x, g) = (c1.as_ref().unwrap_or(s1), c2.as_ref().unwrap_or(s2));
    let (a1, b1) = range(l1, c1.is_some());
    let (a2, b2) = range(l2, c2.is_some());
    let n = b1 - a1;
    let slice = match (&x.slice, &g.slice) {
        (CudaStorageSlice::F32(x), CudaStorageSlice::F32(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::F32(bwd_typed(function, kernels, &dev, Dtype::F32, x, g, n)?)
        }
        (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::BF16(bwd_typed(function, kernels, &dev, Dtype::Bf16, x, g, n)?)
        }
        (CudaStorageSlice::F16(x), CudaStorageSlice::F16(g)) => {
            let (x, g) = (x.slice(a1..b1), g.slice(a2..b2));
            CudaStorageSlice::F16(bwd_typed(function, kernels, &dev, Dtype::F16, x, g, n)?)
        }
        _ => {
            return Err(msg(format!(
                "fused backward supports matching f32, bf16 or f16 tensors; got {:?} and {:?}",
                x.dtype(),
                g.dtype()
            )))
        }
    };
    let out = trim(CudaStorage { slice, device: dev }, n)?;
    Ok((out, l1.shape().clone()))
}
