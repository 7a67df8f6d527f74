//! The fused activation as candle custom ops.
//!
//! [`FusedActivation`] is a `CustomOp1`: on the CPU its forward is one pass
//! of the chunked evaluator (threads over large tensors), on CUDA one launch
//! of the NVRTC-compiled forward kernel on candle's stream. Its `bwd` applies
//! [`FusedBackward`], a `CustomOp2` on (x, grad_out) → grad_in, which is one
//! fused pass/kernel recomputing f'(x) from x. Only x is kept for backward.
//! Storage f32, bf16 and f16; math in f32. Non-contiguous inputs are copied
//! to a contiguous buffer first.

use std::mem::MaybeUninit;
use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};

use super::dtype::unsupported;
use crate::diff::Function;
use crate::ir::{Lane, Shift, Tape, CHUNK};

/// Elements per parallel task (a few hundred KB of f32).
pub(crate) const PAR_BLOCK: usize = 64 * CHUNK;

pub(crate) struct Inner {
    pub(crate) formula: String,
    pub(crate) function: Function,
    pub(crate) fwd: Tape,
    pub(crate) bwd: Tape,
    #[cfg(feature = "cuda")]
    pub(crate) cuda: super::cuda::CudaKernels,
}

/// A compiled activation usable as a candle op. Cheap to clone.
#[derive(Clone)]
pub struct FusedActivation {
    pub(crate) inner: Arc<Inner>,
}

impl FusedActivation {
    /// From a formula in the language (with the standard prelude).
    pub fn new(formula: &str) -> crate::Result<FusedActivation> {
        Ok(FusedActivation::from_function(
            formula,
            Function::new(&crate::ir::parse(formula)?),
        ))
    }

    pub fn from_function(formula: &str, function: Function) -> FusedActivation {
        let fwd = Tape::new(&function.graph, &[function.f]);
        let bwd = Tape::new(&function.graph, &[function.df]);
        FusedActivation {
            inner: Arc::new(Inner {
                formula: formula.to_string(),
                function,
                fwd,
                bwd,
                #[cfg(feature = "cuda")]
                cuda: Default::default(),
            }),
        }
    }

    pub fn formula(&self) -> &str {
        &self.inner.formula
    }

    pub fn function(&self) -> &Function {
        &self.inner.function
    }

    /// `f(x)`, differentiable (the backward is the fused derivative).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1(self.clone())
    }

    /// `f(x + b)` for `x [P, N, F]` and a bias `b [P, 1, F]` broadcast over
    /// the rows (an MLP's `f(x·W + b)`), differentiable in both. On the CPU
    /// the bias add is folded into the fused pass (forward and backward);
    /// elsewhere it is candle's `broadcast_add` before the fused op. The
    /// sum is rounded to the storage dtype first, as `broadcast_add` does,
    /// so both give the same values.
    pub fn forward_bias(&self, x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let (p, _, f) = x.dims3()?;
        if x.device().is_cpu() && b.dims() == [p, 1, f] && x.elem_count() > 0 {
            let op = FusedBias {
                inner: self.inner.clone(),
            };
            return x.apply_op2(b, op);
        }
        self.forward(&x.broadcast_add(b)?)
    }

    /// `dy · f'(x)` directly (what autograd runs), for benchmarks and tests.
    pub fn backward(&self, x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op2_no_bwd(
            dy,
            &FusedBackward {
                inner: self.inner.clone(),
            },
        )
    }
}

/// The fused backward: `(x, grad_out) → grad_out · f'(x)`.
pub struct FusedBackward {
    pub(crate) inner: Arc<Inner>,
}

fn msg(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// A contiguous view of the storage: borrowed when the layout allows,
/// otherwise a strided copy.
pub(crate) fn contiguous_cpu<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    keep: &'a mut Option<CpuStorage>,
) -> candle_core::Result<(&'a CpuStorage, usize, usize)> {
    if let Some((a, b)) = l.contiguous_offsets() {
        return Ok((s, a, b));
    }
    let n = l.shape().elem_count();
    let mut dst = candle_core::cpu_backend::CpuDevice.zeros_impl(l.shape(), s.dtype())?;
    s.copy_strided_src(&mut dst, 0, l)?;
    Ok((keep.insert(dst), 0, n))
}

use candle_core::backend::BackendDevice;

/// A vector of `n` elements, each written exactly once by `fill`, which
/// gets the uninitialised storage (no zeroing pass over a fresh buffer).
fn filled<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` is one of the map functions below, which write every
    // element of the slice they are given (the evaluator asserts that the
    // lengths match, and a panic leaves the length at 0).
    unsafe { v.set_len(n) };
    v
}

/// The output buffer shared by the pool's threads, each writing the
/// disjoint blocks it claims.
struct SharedOut<T>(*mut MaybeUninit<T>, usize);
// SAFETY: threads only form disjoint sub-slices (see `block`).
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// Block `b` of `PAR_BLOCK` elements (the last may be shorter).
    ///
    /// SAFETY: each block index must be handed to one thread only.
    #[allow(clippy::mut_from_ref)]
    unsafe fn block(&self, b: usize) -> &mut [MaybeUninit<T>] {
        let start = b * PAR_BLOCK;
        let len = PAR_BLOCK.min(self.1 - start);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Run `f(scratch, block index, output block)` over the output in blocks
/// of `PAR_BLOCK`, on candle's own CPU thread pool (the one its elementwise
/// ops use), so the fused op and the candle ops around it never compete
/// for cores with a second pool. Small outputs run inline.
fn par_blocks<T: Send>(
    tape: &Tape,
    out: &mut [MaybeUninit<T>],
    f: impl Fn(&mut [f32], usize, &mut [MaybeUninit<T>]) + Sync,
) {
    if out.len() <= PAR_BLOCK {
        return f(&mut tape.scratch(), 0, out);
    }
    let blocks = out.len().div_ceil(PAR_BLOCK);
    let shared = SharedOut(out.as_mut_ptr(), out.len());
    candle_core::utils::barrier_pool().execute_chunked(blocks, |range| {
        let mut scratch = tape.scratch();
        for b in range {
            // SAFETY: execute_chunked hands out each index exactly once.
            f(&mut scratch, b, unsafe { shared.block(b) });
        }
    });
}

fn map_par<T: Lane>(tape: &Tape, x: &[T], shift: Option<&Shift<T>>) -> Vec<T> {
    filled(x.len(), |y| {
        par_blocks(tape, y, |scratch, b, yc| {
            let xc = &x[b * PAR_BLOCK..][..yc.len()];
            tape.map_shifted_into(scratch, xc, shift.map(|s| (s, b * PAR_BLOCK)), yc);
        })
    })
}

fn map_mul_par<T: Lane>(tape: &Tape, x: &[T], shift: Option<&Shift<T>>, dy: &[T]) -> Vec<T> {
    assert_eq!(x.len(), dy.len(), "lengths differ");
    filled(x.len(), |dx| {
        par_blocks(tape, dx, |scratch, b, dc| {
            let r = b * PAR_BLOCK..b * PAR_BLOCK + dc.len();
            let sh = shift.map(|s| (s, r.start));
            tape.map_mul_shifted_into(scratch, &x[r.clone()], sh, &dy[r], dc);
        })
    })
}

impl CustomOp1 for FusedActivation {
    fn name(&self) -> &'static str {
        "actforge-fused"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut keep = None;
        let (s, a, b) = contiguous_cpu(storage, layout, &mut keep)?;
        let tape = &self.inner.fwd;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(map_par(tape, &v[a..b], None)),
            CpuStorage::BF16(v) => CpuStorage::BF16(map_par(tape, &v[a..b], None)),
            CpuStorage::F16(v) => CpuStorage::F16(map_par(tape, &v[a..b], None)),
            other => return Err(unsupported(other.dtype())),
        };
        Ok((out, layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::forward(&self.inner.function, &self.inner.cuda, storage, layout)
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dx = arg.apply_op2_no_bwd(
            grad_res,
            &FusedBackward {
                inner: self.inner.clone(),
            },
        )?;
        Ok(Some(dx))
    }
}

impl CustomOp2 for FusedBackward {
    fn name(&self) -> &'static str {
        "actforge-fused-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(msg(format!(
                "fused backward: x is {:?} but the gradient is {:?}",
                l1.shape(),
                l2.shape()
            )));
        }
        let (mut k1, mut k2) = (None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (g, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let tape = &self.inner.bwd;
        let out = match (x, g) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => {
                CpuStorage::F32(map_mul_par(tape, &x[a1..b1], None, &g[a2..b2]))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(g)) => {
                CpuStorage::BF16(map_mul_par(tape, &x[a1..b1], None, &g[a2..b2]))
            }
            (CpuStorage::F16(x), CpuStorage::F16(g)) => {
                CpuStorage::F16(map_mul_par(tape, &x[a1..b1], None, &g[a2..b2]))
            }
            (x, g) if x.dtype() != g.dtype() => {
                return Err(msg(format!(
                    "fused backward: x is {:?} but the gradient is {:?}",
                    x.dtype(),
                    g.dtype()
                )))
            }
            (x, _) => return Err(unsupported(x.dtype())),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::backward(&self.inner.function, &self.inner.cuda, s1, l1, s2, l2)
    }
}

/// The fused activation of a biased input, `(x [P, N, F], b [P, 1, F]) →
/// f(x + b)`; its backward is [`FusedBiasBackward`] for x and that
/// gradient summed over the rows for b.
struct FusedBias {
    inner: Arc<Inner>,
}

/// `(x, b, dy) → [dz, db]` flat: `dz = dy · f'(x + b)` (`P·N·F`
/// elements) followed by the bias's gradient, dz summed over the rows of
/// each member (`P·F`, in row order: no dependence on threads).
struct FusedBiasBackward {
    inner: Arc<Inner>,
}

/// The shift of a biased input `[P, N, F]`.
pub(crate) fn shift<'a, T>(bias: &'a [T], l: &Layout) -> candle_core::Result<Shift<'a, T>> {
    let (_, n, f) = l.shape().dims3()?;
    Ok(Shift {
        bias,
        width: f,
        per: n * f,
    })
}

impl CustomOp2 for FusedBias {
    fn name(&self) -> &'static str {
        "actforge-fused-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (mut k1, mut k2) = (None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (b, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let tape = &self.inner.fwd;
        let out = match (x, b) {
            (CpuStorage::F32(x), CpuStorage::F32(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F32(map_par(tape, &x[a1..b1], Some(&sh)))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::BF16(map_par(tape, &x[a1..b1], Some(&sh)))
            }
            (CpuStorage::F16(x), CpuStorage::F16(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F16(map_par(tape, &x[a1..b1], Some(&sh)))
            }
            (x, b) => return Err(mismatch("fused bias activation", x.dtype(), b.dtype())),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let op = FusedBiasBackward {
            inner: self.inner.clone(),
        };
        let (p, n, f) = x.dims3()?;
        let packed = x.apply_op3_no_bwd(b, grad_res, &op)?;
        let dx = packed.narrow(0, 0, p * n * f)?.reshape((p, n, f))?;
        let db = packed.narrow(0, p * n * f, p * f)?.reshape((p, 1, f))?;
        Ok((Some(dx), Some(db)))
    }
}

/// Matching f32, bf16 or f16 storage was expected.
pub(crate) fn mismatch(what: &str, a: DType, b: DType) -> candle_core::Error {
    if a == b {
        return unsupported(a);
    }
    msg(format!(
        "{what}: the tensors are {a:?} and {b:?}; they must match"
    ))
}

impl CustomOp3 for FusedBiasBackward {
    fn name(&self) -> &'static str {
        "actforge-fused-bias-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l3.shape() {
            return Err(msg(format!(
                "fused backward: x is {:?} but the gradient is {:?}",
                l1.shape(),
                l3.shape()
            )));
        }
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (b, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let (g, a3, b3) = contiguous_cpu(s3, l3, &mut k3)?;
        let tape = &self.inner.bwd;
        let out = match (x, b, g) {
            (CpuStorage::F32(x), CpuStorage::F32(b), CpuStorage::F32(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F32(with_sums(
                    map_mul_par(tape, &x[a1..b1], Some(&sh), &g[a3..b3]),
                    &sh,
                ))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(b), CpuStorage::BF16(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::BF16(with_sums(
                    map_mul_par(tape, &x[a1..b1], Some(&sh), &g[a3..b3]),
                    &sh,
                ))
            }
            (CpuStorage::F16(x), CpuStorage::F16(b), CpuStorage::F16(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F16(with_sums(
                    map_mul_par(tape, &x[a1..b1], Some(&sh), &g[a3..b3]),
                    &sh,
                ))
            }
            (x, _, g) => return Err(mismatch("fused bias backward", x.dtype(), g.dtype())),
        };
        let (p, n, f) = l1.shape().dims3()?;
        Ok((out, Shape::from(p * n * f + p * f)))
    }
}

/// `dz` followed by its column sums per member (f32 sums in row order,
/// rounded once).
pub(crate) fn with_sums<T: Lane>(mut dz: Vec<T>, sh: &Shift<T>) -> Vec<T> {
    let (f, per) = (sh.width, sh.per);
    let members = dz.len() / per.max(1);
    let mut sums = vec![0.0f32; members * f];
    for (m, member) in dz.chunks(per.max(1)).enumerate() {
        let acc = &mut sums[m * f..(m + 1) * f];
        for row in member.chunks(f) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += v.to_f32();
            }
        }
    }
    dz.extend(sums.into_iter().map(T::from_f32));
    dz
}
