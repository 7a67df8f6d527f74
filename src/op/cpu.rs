//! What the fused CPU row ops share: f32 views of candle storage, output
//! buffers filled in place, work split into fixed blocks of rows on
//! candle's CPU thread pool, and [`simd_fn!`], which compiles a kernel for
//! the widest SIMD level the CPU has.
//!
//! Results never depend on the number of threads: blocks are fixed by the
//! shape, not by the pool, every block's result lands in its own place, and
//! anything summed across blocks is summed afterwards in block order.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cpu_backend::CpuDevice;
use candle_core::{CpuStorage, DType, Layout};

pub(crate) fn msg(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// The f32 elements of a tensor in row-major order: borrowed when the
/// layout is contiguous, else gathered. Other dtypes are an error naming
/// the op (callers take the composed path for them).
pub(crate) fn f32s<'a>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<Cow<'a, [f32]>> {
    let CpuStorage::F32(v) = s else {
        return Err(msg(format!(
            "{op}: the fused CPU op takes f32 tensors, not {:?} (other dtypes take the composed path)",
            s.dtype()
        )));
    };
    if let Some((a, b)) = l.contiguous_offsets() {
        return Ok(Cow::Borrowed(&v[a..b]));
    }
    let mut dst = CpuDevice.zeros_impl(l.shape(), DType::F32)?;
    s.copy_strided_src(&mut dst, 0, l)?;
    match dst {
        CpuStorage::F32(d) => Ok(Cow::Owned(d)),
        _ => unreachable!("zeros_impl made f32"),
    }
}

/// Is the tensor one the fused CPU row ops (norms, attention softmax,
/// cross-entropy) take: f32 on the CPU? Others take the composed chains.
pub fn fusable(t: &candle_core::Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// A vector of `n` elements, each written exactly once by `fill`, which
/// gets the uninitialised storage (no zeroing pass over a fresh buffer).
pub(crate) fn filled<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: every caller's `fill` writes every element of the slice it is
    // given (the row ops below hand each block of rows to one kernel that
    // writes all of it); a panic leaves the length at 0.
    unsafe { v.set_len(n) };
    v
}

/// A buffer shared by the pool's threads, each writing the disjoint
/// blocks of rows it claims.
pub(crate) struct Shared<T>(*mut T, usize);
// SAFETY: threads only form disjoint sub-slices (see `rows`).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub(crate) fn new(buf: &mut [T]) -> Shared<T> {
        Shared(buf.as_mut_ptr(), buf.len())
    }

    /// Elements `range` of the buffer.
    ///
    /// SAFETY: no two live slices from one `Shared` may overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.1,
            "block out of range"
        );
        std::slice::from_raw_parts_mut(self.0.add(range.start), range.end - range.start)
    }
}

/// Rows per block of a row op: about `target` elements per block (at
/// least one row). Depends on the shape only, never on the thread count.
pub(crate) fn block_rows(row_len: usize, target: usize) -> usize {
    (target / row_len.max(1)).max(1)
}

/// Runs `f(block)` for blocks `0..blocks` on candle's CPU pool (the one
/// its own ops use, so the fused ops and candle's never compete for
/// cores); inline when there is one block.
pub(crate) fn for_blocks(blocks: usize, f: impl Fn(usize) + Sync) {
    match blocks {
        0 => {}
        1 => f(0),
        _ => candle_core::utils::barrier_pool().execute_chunked(blocks, |range| {
            for b in range {
                f(b)
            }
        }),
    }
}

/// Defines a function whose body is compiled three times (AVX-512, AVX2 +
/// FMA, baseline) and runs the widest the CPU supports, capped by
/// `ACTFORGE_SIMD` like the evaluator. The builds perform the same IEEE
/// operations in the same order (Rust never contracts `a·b + c` into an
/// FMA; sums use fixed lane accumulators), so they agree bit for bit.
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($a: $t),*) $(-> $r)? {
                    portable($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($a: $t),*) $(-> $r)? {
                    portable($($a),*)
                }
                use $crate::ir::eval::{simd_level, Simd};
                match simd_level() {
                    // SAFETY: the CPU has these features (checked by simd_level).
                    Simd::Avx512 => return unsafe { avx512($($a),*) },
                    // SAFETY: as above.
                    Simd::Avx2 => return unsafe { avx2($($a),*) },
                    Simd::Base => {}
                }
            }
            portable($($a),*)
        }
    };
}
pub(crate) use simd_fn;

/// Lanes of the fixed accumulators in row sums and maxima (one AVX-512
/// register, two AVX2 ones).
pub(crate) const LANES: usize = 16;

/// `Σ f(x[i])` with [`LANES`] accumulators, then summed pairwise in a
/// fixed order: vectorizes, and the result does not depend on the build.
#[inline(always)]
pub(crate) fn sum_by(x: &[f32], f: impl Fn(usize, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let full = x.len() / LANES * LANES;
    for (c, chunk) in x[..full].chunks_exact(LANES).enumerate() {
        for (l, (a, &v)) in acc.iter_mut().zip(chunk).enumerate() {
            *a += f(c * LANES + l, v);
        }
    }
    for (i, &v) in x.iter().enumerate().skip(full) {
        acc[i - full] += f(i, v);
    }
    fold(acc, |a, b| a + b)
}

/// The largest element (`f32::max` semantics: NaN only if all are NaN;
/// −∞ for an empty row).
#[inline(always)]
pub(crate) fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let full = x.len() / LANES * LANES;
    for chunk in x[..full].chunks_exact(LANES) {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = a.max(v);
        }
    }
    for (i, &v) in x.iter().enumerate().skip(full) {
        acc[i - full] = acc[i - full].max(v);
    }
    fold(acc, f32::max)
}

/// Pairwise fold of the lanes (8 + 8, 4 + 4, …).
#[inline(always)]
fn fold(mut acc: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut w = LANES / 2;
    while w > 0 {
        let (lo, hi) = acc.split_at_mut(w);
        for (a, &b) in lo.iter_mut().zip(&hi[..w]) {
            *a = f(*a, b);
        }
        w /= 2;
    }
    acc[0]
}

/// A matrix operand: its elements and (column, row) strides.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) cs: usize,
    pub(crate) rs: usize,
}

impl Mat<'_> {
    /// Does every element of a `rows × cols` matrix lie in `data`?
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = lhs · rhs` (`m × k` times `k × n`, `dst` row-major `m × n`)
/// with the `gemm` call candle's CPU matmul makes for these strides (same
/// kernel, blocking and thread split, hence the same bits as
/// `Tensor::matmul` on tensors with these layouts). Every element of
/// `dst` is written, none read.
pub(crate) fn matmul_into(
    (m, n, k): (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    dst: &mut [MaybeUninit<f32>],
) {
    assert!(
        lhs.holds(m, k) && rhs.holds(k, n) && dst.len() == m * n,
        "matmul_into: operands do not fit {m}x{k} · {k}x{n}"
    );
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above keeps every index gemm forms (row·rs +
    // col·cs within the stated sizes) inside the slices; with read_dst
    // false gemm writes every element of dst and reads none, so
    // uninitialised dst memory is fine.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<f32>(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
