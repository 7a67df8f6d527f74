//! A linear map's bias add `y + b` (`y [P, N, F]`, `b [P, 1, F]`) as one
//! CPU op whose backward hands `dy` through and sums the bias's gradient
//! over the rows in one vectorized pass.
//!
//! The composed form, candle's `broadcast_add`, gives the same values bit
//! for bit: the forward is the same f32 add, and candle's gradient of the
//! broadcast is a sum over the rows that adds them in row order, one
//! accumulator per column starting at 0, which is what [`column_sums`]
//! does (a vector of columns at a time instead of one element at a time).
//! What the op saves is candle's strided scalar reduction and the
//! broadcast node's own zeroed gradient buffer.
//!
//! f32 on the CPU; elsewhere [`add`] is `broadcast_add`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::cpu::{f32s, filled, fusable, msg, simd_fn};

/// The forward: (y, b) → y + b.
struct BiasAdd;

/// `y + b` for `y [P, N, F]` and `b [P, 1, F]`, differentiable in both:
/// the fused op for f32 on the CPU, else `broadcast_add`.
pub fn add(y: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let fits = matches!((y.dims(), b.dims()), ([p, _, f], [q, 1, g]) if p == q && f == g);
    if fits && fusable(y) && fusable(b) && y.elem_count() > 0 {
        return y.apply_op2(b, BiasAdd);
    }
    y.broadcast_add(b)
}

simd_fn! {
    /// `out[n, :] = y[n, :] + b` for every row of one member.
    fn add_rows(y: &[f32], b: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
        for (o, r) in out.chunks_exact_mut(b.len()).zip(y.chunks_exact(b.len())) {
            for ((o, &v), &c) in o.iter_mut().zip(r).zip(b) {
                o.write(v + c);
            }
        }
    }
}

simd_fn! {
    /// `acc[j] = ((0 + g[0, j]) + g[1, j]) + …` over the rows of one member.
    fn column_sums(g: &[f32], acc: &mut [f32]) {
        acc.fill(0.0);
        for r in g.chunks_exact(acc.len()) {
            for (a, &v) in acc.iter_mut().zip(r) {
                *a += v;
            }
        }
    }
}

/// Per member, the sums over the rows of `g [P, N, F]`: `[P, 1, F]`
/// (f32 on the CPU).
pub fn row_sums(g: &Tensor) -> candle_core::Result<Tensor> {
    g.apply_op1_no_bwd(&RowSums)
}

/// The backward's bias gradient: `g [P, N, F]` → `[P, 1, F]`.
struct RowSums;

impl CustomOp1 for RowSums {
    fn name(&self) -> &'static str {
        "actforge-bias-add-bwd"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, f) = l.shape().dims3()?;
        let g = f32s(self.name(), s, l)?;
        let mut out = vec![0.0f32; p * f];
        if n * f > 0 {
            for (acc, m) in out.chunks_exact_mut(f).zip(g.chunks_exact(n * f)) {
                column_sums(m, acc);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((p, 1, f))))
    }
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "actforge-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, f) = l1.shape().dims3()?;
        if l2.shape().dims() != [p, 1, f] {
            return Err(msg(format!(
                "bias add: bias {:?} does not fit {:?}",
                l2.shape().dims(),
                l1.shape().dims()
            )));
        }
        let (y, b) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        let out = filled(p * n * f, |out| {
            for ((o, m), bm) in out
                .chunks_exact_mut(n * f)
                .zip(y.chunks_exact(n * f))
                .zip(b.chunks_exact(f))
            {
                add_rows(m, bm, o);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(row_sums(grad)?)))
    }
}
