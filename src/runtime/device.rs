//! The GPU side: open a device, load compiled modules, launch the fused
//! kernels. This is the only module that launches kernels (and so the only
//! `unsafe` launch code); callers with their own stream (candle) pass it in.
//!
//! libcuda is loaded at run time. cudarc panics when it is missing, so the
//! library is probed first and absence is an [`Error::Missing`].

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, CudaView, CudaViewMut, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::cache::{Image, KernelCache};
use super::nvrtc::Output;
use crate::codegen::{Dtype, Module, MAX_SLICES};
use crate::error::{Error, Result};

/// Threads per block for the elementwise kernels.
pub const BLOCK: u32 = 256;
/// Resident blocks per SM worth launching for a grid-stride loop.
pub const BLOCKS_PER_SM: u32 = 8;

fn cuda_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// Is a CUDA driver library loadable in this process?
pub fn driver_present() -> bool {
    #[cfg(not(feature = "cuda"))]
    {
        // SAFETY: only tries to load libcuda; no driver function is called.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }
    #[cfg(feature = "cuda")]
    {
        true
    }
}

/// An open GPU with its stream and the facts launches need.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub name: String,
    /// Compute capability as a number: 90 for sm_90.
    pub arch: u32,
    pub sm_count: u32,
}

impl Gpu {
    /// Open device `ordinal`, or say precisely why not.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        if !driver_present() {
            return Err(Error::Missing {
                what: "a CUDA driver (libcuda.so.1)".into(),
                detail: "no NVIDIA driver library could be loaded on this machine".into(),
                hint: "run on a machine with an NVIDIA GPU and driver; everything else (export, the CPU path) works without one".into(),
            });
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| cuda_err(&format!("opening GPU {ordinal}"), e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| cuda_err("compute capability", e))?;
        let sm_count = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| cuda_err("SM count", e))? as u32;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let stream = ctx.default_stream();
        Ok(Gpu {
            ctx,
            stream,
            name,
            arch: (major * 10 + minor) as u32,
            sm_count,
        })
    }

    /// Load a compiled image (CUBIN or PTX) into this context.
    pub fn load(&self, image: &Image) -> Result<Arc<CudaModule>> {
        load_image(&self.ctx, image)
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_err("synchronize", e))
    }
}

/// Load an image into a context.
pub fn load_image(ctx: &Arc<CudaContext>, image: &Image) -> Result<Arc<CudaModule>> {
    let ptx = match image.output {
        Output::Cubin => Ptx::from_binary(image.bytes.clone()),
        Output::Ptx => Ptx::from_src(String::from_utf8_lossy(&image.bytes).into_owned()),
    };
    ctx.load_module(ptx)
        .map_err(|e| cuda_err("loading the compiled module", e))
}

/// A generated module compiled for the GPU of `ctx` and loaded, with all
/// of its kernels looked up by name: the one way a generated module
/// reaches a GPU (the fused ops and the population op both come through
/// here). The image comes through the process-wide kernel cache: a CUBIN
/// for the context's SM, or PTX for the newest architecture NVRTC knows
/// below it ([`KernelCache::image_for`]). `name` names the program in
/// NVRTC's log. Returns the kernels and the device's SM count (for the
/// launch grids).
pub fn compile_and_load(
    ctx: &Arc<CudaContext>,
    module: &Module,
    name: &str,
) -> Result<(Kernels, u32)> {
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| cuda_err("compute capability", e))?;
    let sm_count = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map_err(|e| cuda_err("SM count", e))? as u32;
    let arch = (major * 10 + minor) as u32;
    let image = KernelCache::global().image_for(&module.source(), name, arch)?;
    let loaded = load_image(ctx, &image)?;
    let kernels = Kernels::new(loaded, module.kernels().into_iter().map(|k| k.name))?;
    Ok((kernels, sm_count))
}

/// A loaded module with its functions looked up by name.
pub struct Kernels {
    pub module: Arc<CudaModule>,
    functions: HashMap<String, CudaFunction>,
}

impl Kernels {
    pub fn new(
        module: Arc<CudaModule>,
        names: impl IntoIterator<Item = String>,
    ) -> Result<Kernels> {
        let mut functions = HashMap::new();
        for n in names {
            let f = module
                .load_function(&n)
                .map_err(|e| cuda_err(&format!("kernel `{n}`"), e))?;
            functions.insert(n, f);
        }
        Ok(Kernels { module, functions })
    }

    pub fn get(&self, name: &str) -> Result<&CudaFunction> {
        self.functions
            .get(name)
            .ok_or_else(|| Error::Cuda(format!("kernel `{name}` is not in the loaded module")))
    }
}

/// Grid for `n` elements: enough blocks for one vector per thread, capped
/// at `BLOCKS_PER_SM` per SM (the grid-stride loop covers the rest).
pub fn launch_config(n: usize, dtype: Dtype, sm_count: u32) -> LaunchConfig {
    let vectors = n.div_ceil(dtype.vector_width()).max(1) as u64;
    let blocks = vectors.div_ceil(BLOCK as u64);
    let cap = (sm_count.max(1) * BLOCKS_PER_SM) as u64;
    LaunchConfig {
        grid_dim: (blocks.clamp(1, cap) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The formula of each slice of a population launch, passed by value
/// (`struct act_slices` of every dispatch module; see
/// `codegen::population_params`). Entries past the launch's slices are
/// unused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slices {
    pub id: [u32; MAX_SLICES],
}

// SAFETY: a plain `#[repr(C)]` array of u32, the layout of `struct
// act_slices { unsigned int id[ACT_MAX_SLICES]; }` in the kernels.
unsafe impl cudarc::driver::DeviceRepr for Slices {}

/// Grid for a population of `slices` slices of `n` elements: `blockIdx.y`
/// is the slice; along x enough blocks for one vector per thread, capped
/// so that the whole grid stays near `BLOCKS_PER_SM` per SM (at least one
/// block per slice; the grid-stride loop covers the rest).
pub fn population_config(n: usize, slices: usize, dtype: Dtype, sm_count: u32) -> LaunchConfig {
    let vectors = n.div_ceil(dtype.vector_width()).max(1) as u64;
    let blocks = vectors.div_ceil(BLOCK as u64);
    let cap = ((sm_count.max(1) * BLOCKS_PER_SM) as u64 / slices.max(1) as u64).max(1);
    LaunchConfig {
        grid_dim: (blocks.clamp(1, cap) as u32, slices.max(1) as u32, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `y[j] = f_{ids[j]}(x[j])` for the `cfg.grid_dim.1` slices of `n`
/// elements each (`act_population_fwd_<dtype>`). `x` and `y` hold the
/// launch's slices back to back.
pub fn launch_population_forward<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    ids: &Slices,
    x: &CudaView<'_, T>,
    y: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    let total = n * cfg.grid_dim.1 as usize;
    if cfg.grid_dim.1 as usize > MAX_SLICES || x.len() < total || y.len() < total {
        return Err(Error::Internal(format!(
            "population forward launch of {} slices of {n} elements on buffers of {} and {}",
            cfg.grid_dim.1,
            x.len(),
            y.len()
        )));
    }
    let n64 = n as u64;
    let mut b = stream.launch_builder(func);
    b.arg(ids).arg(x).arg(y).arg(&n64);
    // SAFETY: the kernel signature is (act_slices, const T*, T*, unsigned
    // long long) by the ABI in `codegen` (`Slices` is act_slices), the grid
    // has at most MAX_SLICES slices along y, and both buffers hold all of
    // them.
    unsafe { b.launch(cfg) }.map_err(|e| cuda_err("launching the population forward", e))?;
    Ok(())
}

/// `dx[j] = dy[j] * f'_{ids[j]}(x[j])` for the launch's slices
/// (`act_population_bwd_<dtype>`).
#[allow(clippy::too_many_arguments)]
pub fn launch_population_backward<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    ids: &Slices,
    x: &CudaView<'_, T>,
    dy: &CudaView<'_, T>,
    dx: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    let total = n * cfg.grid_dim.1 as usize;
    if cfg.grid_dim.1 as usize > MAX_SLICES
        || x.len() < total
        || dy.len() < total
        || dx.len() < total
    {
        return Err(Error::Internal(format!(
            "population backward launch of {} slices of {n} elements on shorter buffers",
            cfg.grid_dim.1
        )));
    }
    let n64 = n as u64;
    let mut b = stream.launch_builder(func);
    b.arg(ids).arg(x).arg(dy).arg(dx).arg(&n64);
    // SAFETY: (act_slices, const T*, const T*, T*, unsigned long long) by
    // the ABI, at most MAX_SLICES slices, and all three buffers hold them.
    unsafe { b.launch(cfg) }.map_err(|e| cuda_err("launching the population backward", e))?;
    Ok(())
}

/// `y = f(x)` on `stream`. `x` and `y` hold at least `n` elements of the
/// kernel's storage type (f32 as `f32`, bf16/f16 as `u16`).
pub fn launch_forward<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    x: &CudaView<'_, T>,
    y: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    launch_forward_with(stream, func, cfg, None, x, y, n)
}

/// [`launch_forward`] of a per-formula kernel (`id` None) or of formula
/// `id` through a dispatch kernel (`act_dispatch_fwd_<dtype>`, see
/// `codegen::Layout::Dispatch`).
pub fn launch_forward_with<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    id: Option<u32>,
    x: &CudaView<'_, T>,
    y: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    if x.len() < n || y.len() < n {
        return Err(Error::Internal(format!(
            "forward launch of {n} elements on buffers of {} and {}",
            x.len(),
            y.len()
        )));
    }
    let n64 = n as u64;
    let mut b = stream.launch_builder(func);
    if let Some(id) = &id {
        b.arg(id);
    }
    b.arg(x).arg(y).arg(&n64);
    // SAFETY: the kernel signature is ([unsigned int id,] const T*, T*,
    // unsigned long long) by the ABI in `codegen` (the id exactly for
    // dispatch kernels), and both buffers hold n elements.
    unsafe { b.launch(cfg) }.map_err(|e| cuda_err("launching the forward kernel", e))?;
    Ok(())
}

/// `dx = dy * f'(x)` on `stream`.
pub fn launch_backward<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    x: &CudaView<'_, T>,
    dy: &CudaView<'_, T>,
    dx: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    launch_backward_with(stream, func, cfg, None, x, dy, dx, n)
}

/// [`launch_backward`] of a per-formula kernel (`id` None) or of formula
/// `id` through a dispatch kernel.
#[allow(clippy::too_many_arguments)]
pub fn launch_backward_with<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    id: Option<u32>,
    x: &CudaView<'_, T>,
    dy: &CudaView<'_, T>,
    dx: &mut CudaViewMut<'_, T>,
    n: usize,
) -> Result<()> {
    if x.len() < n || dy.len() < n || dx.len() < n {
        return Err(Error::Internal(format!(
            "backward launch of {n} elements on shorter buffers"
        )));
    }
    let n64 = n as u64;
    let mut b = stream.launch_builder(func);
    if let Some(id) = &id {
        b.arg(id);
    }
    b.arg(x).arg(dy).arg(dx).arg(&n64);
    // SAFETY: ([unsigned int id,] const T*, const T*, T*, unsigned long
    // long) by the ABI, and all three buffers hold n elements.
    unsafe { b.launch(cfg) }.map_err(|e| cuda_err("launching the backward kernel", e))?;
    Ok(())
}

/// One step of a composed chain: `out = op(a, b, c)` with operands given
/// as raw device addresses (`None`: unused, passed as null).
pub fn launch_composed_step<T>(
    stream: &Arc<CudaStream>,
    func: &CudaFunction,
    cfg: LaunchConfig,
    operands: [Option<u64>; 3],
    out: &mut cudarc::driver::CudaSlice<T>,
    n: usize,
) -> Result<()> {
    if out.len() < n {
        return Err(Error::Internal(format!(
            "composed step of {n} elements on a buffer of {}",
            out.len()
        )));
    }
    let ptrs = operands.map(|p| p.unwrap_or(0));
    let n64 = n as u64;
    let mut b = stream.launch_builder(func);
    b.arg(&ptrs[0])
        .arg(&ptrs[1])
        .arg(&ptrs[2])
        .arg(out)
        .arg(&n64);
    // SAFETY: composed kernels take (const T*, const T*, const T*, T*,
    // unsigned long long); operand addresses come from live buffers of at
    // least n elements (the caller holds them), unused ones are null and
    // never read.
    unsafe { b.launch(cfg) }.map_err(|e| cuda_err("launching a composed step", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_small_inputs_and_caps_large_ones() {
        let c = launch_config(1, Dtype::F32, 132);
        assert_eq!(c.grid_dim.0, 1);
        let c = launch_config(4 * 256 * 3, Dtype::F32, 132);
        assert_eq!(c.grid_dim.0, 3);
        let c = launch_config(1 << 28, Dtype::Bf16, 132);
        assert_eq!(c.grid_dim.0, 132 * BLOCKS_PER_SM);
    }
}
