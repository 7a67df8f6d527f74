//! Layer norm and RMS norm over the last dimension as fused CPU ops: one
//! pass per row forward (statistics, normalisation, gain and bias), and one
//! backward op that gives the input's, the gain's and the bias's gradients
//! in one pass per row.
//!
//! Inputs `x [P, N, D]`, gain and bias `[P, 1, D]` (one per population
//! member), as in `model::norm`, whose composed chains define the values:
//!
//! - layer norm: `(x − mean) / sqrt(var + eps) · g + b` (biased variance);
//! - RMS norm: `x / sqrt(mean(x²) + eps) · g`.
//!
//! Nothing is saved for the backward: it recomputes each row's statistics
//! (the row is read anyway). The backward op returns one tensor
//! `[P, N + 2, D]` (`N + 1` for RMS): rows `0..N` are dx, row N the gain's
//! gradient, row N + 1 the bias's; the forward's `bwd` hands out views of
//! it. Gradients of the gain and bias are summed over fixed blocks of rows
//! and then over the blocks in order, so they do not depend on the thread
//! count. f32 on the CPU; the composed chains serve other devices and
//! dtypes.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor, D};

use super::cpu::{block_rows, f32s, filled, for_blocks, fusable, msg, simd_fn, sum_by, Shared};

/// Elements of x per block of rows.
const BLOCK: usize = 1 << 14;

/// Which norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// Centred, with a bias.
    Layer,
    /// Not centred, no bias (T5).
    Rms,
}

/// The fused forward, for either kind (RMS ignores a bias).
#[derive(Clone, Copy, Debug)]
struct Norm {
    kind: NormKind,
    eps: f32,
}

/// The fused backward: (x, gain, dy) → `[P, N + extra, D]`.
struct NormBackward(Norm);

/// `(x − mean) / sqrt(var + eps) · gain + bias` over the last dimension of
/// `x [P, N, D]`; gain and bias `[P, 1, D]`. Differentiable in all three.
/// The fused op for f32 on the CPU, else [`layer_norm_composed`].
pub fn layer_norm(
    x: &Tensor,
    gain: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !fused(x) {
        return layer_norm_composed(x, gain, bias, eps);
    }
    let op = Norm {
        kind: NormKind::Layer,
        eps: eps as f32,
    };
    x.apply_op3(gain, bias, op)
}

/// `x / sqrt(mean(x²) + eps) · gain`, as [`layer_norm`].
pub fn rms_norm(x: &Tensor, gain: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if !fused(x) {
        return rms_norm_composed(x, gain, eps);
    }
    let op = Norm {
        kind: NormKind::Rms,
        eps: eps as f32,
    };
    x.apply_op2(gain, op)
}

/// Layer norm as a chain of candle ops (other devices and dtypes; the
/// oracle of the fused op).
pub fn layer_norm_composed(
    x: &Tensor,
    gain: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(gain)?.broadcast_add(bias)
}

/// RMS norm as a chain of candle ops.
pub fn rms_norm_composed(x: &Tensor, gain: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    normed.broadcast_mul(gain)
}

/// Does `x` take the fused op (f32 on the CPU, `[P, N, D]`)?
fn fused(x: &Tensor) -> bool {
    fusable(x) && x.rank() == 3
}

/// A row's shift (its mean for layer norm, 0 for RMS) and the divisor
/// `sqrt(var + eps)` (or `sqrt(mean(x²) + eps)`).
#[inline(always)]
fn stats(kind: NormKind, x: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len() as f32;
    match kind {
        NormKind::Layer => {
            let mean = sum_by(x, |_, v| v) / d;
            let var = sum_by(x, |_, v| (v - mean) * (v - mean)) / d;
            (mean, (var + eps).sqrt())
        }
        NormKind::Rms => {
            let ms = sum_by(x, |_, v| v * v) / d;
            (0.0, (ms + eps).sqrt())
        }
    }
}

/// One row forward: `y = (x − shift) / den · g (+ b)`.
#[inline(always)]
fn forward_row(
    kind: NormKind,
    eps: f32,
    x: &[f32],
    g: &[f32],
    b: &[f32],
    y: &mut [MaybeUninit<f32>],
) {
    let (shift, den) = stats(kind, x, eps);
    match kind {
        NormKind::Layer => {
            for (((o, &v), &gi), &bi) in y.iter_mut().zip(x).zip(g).zip(b) {
                o.write((v - shift) / den * gi + bi);
            }
        }
        NormKind::Rms => {
            for ((o, &v), &gi) in y.iter_mut().zip(x).zip(g) {
                o.write(v / den * gi);
            }
        }
    }
}

simd_fn! {
    /// A block of rows forward (one SIMD dispatch per block).
    fn forward_block(kind: NormKind, eps: f32, x: &[f32], g: &[f32], b: &[f32], y: &mut [MaybeUninit<f32>]) {
        let d = g.len();
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            forward_row(kind, eps, xr, g, b, yr);
        }
    }
}

/// One row backward: dx into `dx`; the row's `dy · x̂` and `dy` added to
/// the block's gain and bias sums.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row(
    kind: NormKind,
    eps: f32,
    x: &[f32],
    g: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
    dg: &mut [f32],
    db: &mut [f32],
) {
    let d = x.len() as f32;
    let (shift, den) = stats(kind, x, eps);
    let xhat = |i: usize| (x[i] - shift) / den;
    // dx = (dy·g − mean(dy·g) − x̂ · mean(dy·g·x̂)) / den; RMS has no
    // mean(dy·g) term.
    let a = match kind {
        NormKind::Layer => sum_by(dy, |i, v| v * g[i]) / d,
        NormKind::Rms => 0.0,
    };
    let c = sum_by(dy, |i, v| v * g[i] * xhat(i)) / d;
    for (i, o) in dx.iter_mut().enumerate() {
        o.write((dy[i] * g[i] - a - xhat(i) * c) / den);
    }
    for (i, (s, &v)) in dg.iter_mut().zip(dy).enumerate() {
        *s += v * xhat(i);
    }
    if kind == NormKind::Layer {
        for (s, &v) in db.iter_mut().zip(dy) {
            *s += v;
        }
    }
}

simd_fn! {
    /// A block of rows backward, summing the parameters' gradients over
    /// its rows in order.
    fn backward_block(
        kind: NormKind,
        eps: f32,
        x: &[f32],
        g: &[f32],
        dy: &[f32],
        dx: &mut [MaybeUninit<f32>],
        dg: &mut [f32],
        db: &mut [f32],
    ) {
        let d = g.len();
        let rows = x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
        for ((xr, gr), dr) in rows {
            backward_row(kind, eps, xr, g, gr, dr, dg, db);
        }
    }
}

/// `[P, 1, D]` parameters of `p` members with rows of `d`.
fn check_param(what: &str, l: &Layout, p: usize, d: usize) -> candle_core::Result<()> {
    if l.shape().elem_count() != p * d || l.shape().dims().last() != Some(&d) {
        return Err(msg(format!(
            "fused norm: the {what} is {:?}, expected [{p}, 1, {d}]",
            l.shape()
        )));
    }
    Ok(())
}

impl Norm {
    fn forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, d) = l1.shape().dims3()?;
        if p * n * d == 0 {
            return Ok((CpuStorage::F32(Vec::new()), l1.shape().clone()));
        }
        let x = f32s("fused norm", s1, l1)?;
        let g = f32s("fused norm", s2, l2)?;
        check_param("gain", l2, p, d)?;
        let b = match bias {
            Some((s3, l3)) => {
                check_param("bias", l3, p, d)?;
                f32s("fused norm", s3, l3)?
            }
            None => vec![0.0; p * d].into(),
        };
        let rows = block_rows(d, BLOCK);
        let per = n.div_ceil(rows);
        let y = filled(p * n * d, |y| {
            let out = Shared::new(y);
            for_blocks(p * per, |blk| {
                let (m, r0) = (blk / per, blk % per * rows);
                let r1 = (r0 + rows).min(n);
                let (gm, bm) = (&g[m * d..(m + 1) * d], &b[m * d..(m + 1) * d]);
                let base = m * n * d;
                // SAFETY: each block index comes once; blocks are disjoint.
                let yb = unsafe { out.slice(base + r0 * d..base + r1 * d) };
                let xb = &x[base + r0 * d..base + r1 * d];
                forward_block(self.kind, self.eps, xb, gm, bm, yb);
            })
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// Views of the backward op's packed result: dx and the parameters'.
    fn grads(&self, x: &Tensor, gain: &Tensor, dy: &Tensor) -> candle_core::Result<[Tensor; 3]> {
        let n = x.dim(1)?;
        let packed = x.apply_op3_no_bwd(gain, &dy.contiguous()?, &NormBackward(*self))?;
        Ok([
            packed.narrow(1, 0, n)?,
            packed.narrow(1, n, 1)?,
            match self.kind {
                NormKind::Layer => packed.narrow(1, n + 1, 1)?,
                NormKind::Rms => packed.narrow(1, n, 1)?,
            },
        ])
    }
}

impl CustomOp3 for Norm {
    fn name(&self) -> &'static str {
        "actforge-layer-norm"
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
        self.forward((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [dx, dg, db] = self.grads(x, gain, dy)?;
        Ok((Some(dx), Some(dg), Some(db)))
    }
}

impl CustomOp2 for Norm {
    fn name(&self) -> &'static str {
        "actforge-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let [dx, dg, _] = self.grads(x, gain, dy)?;
        Ok((Some(dx), Some(dg)))
    }
}

impl CustomOp3 for NormBackward {
    fn name(&self) -> &'static str {
        "actforge-norm-bwd"
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
        let Norm { kind, eps } = self.0;
        let (p, n, d) = l1.shape().dims3()?;
        if l3.shape() != l1.shape() {
            return Err(msg(format!(
                "fused norm backward: x is {:?} but the gradient is {:?}",
                l1.shape(),
                l3.shape()
            )));
        }
        check_param("gain", l2, p, d)?;
        let name = "fused norm backward";
        let (x, g, dy) = (
            f32s(name, s1, l1)?,
            f32s(name, s2, l2)?,
            f32s(name, s3, l3)?,
        );
        let extra = match kind {
            NormKind::Layer => 2,
            NormKind::Rms => 1,
        };
        if d == 0 || p == 0 {
            return Ok((CpuStorage::F32(Vec::new()), Shape::from((p, n + extra, d))));
        }
        let rows = block_rows(d, BLOCK);
        let per = n.div_ceil(rows);
        // Per block: its sums of dy·x̂ and of dy.
        let mut partial = vec![0.0f32; p * per * 2 * d];
        let stride = (n + extra) * d;
        let out = filled(p * stride, |buf| {
            let (dx, parts) = (Shared::new(buf), Shared::new(&mut partial));
            for_blocks(p * per, |blk| {
                let (m, r0) = (blk / per, blk % per * rows);
                let r1 = (r0 + rows).min(n);
                let gm = &g[m * d..(m + 1) * d];
                // SAFETY: each block index comes once; blocks are disjoint
                // (in dx, rows r0..r1 of member m; in the sums, block blk).
                let (dxb, part) = unsafe {
                    (
                        dx.slice(m * stride + r0 * d..m * stride + r1 * d),
                        parts.slice(blk * 2 * d..(blk + 1) * 2 * d),
                    )
                };
                let (pg, pb) = part.split_at_mut(d);
                let at = (m * n + r0) * d..(m * n + r1) * d;
                backward_block(kind, eps, &x[at.clone()], gm, &dy[at], dxb, pg, pb);
            });
            // The parameter rows, summed over the blocks in order.
            for m in 0..p {
                let sums = &partial[m * per * 2 * d..(m + 1) * per * 2 * d];
                for (j, col) in [0, d].into_iter().take(extra).enumerate() {
                    // SAFETY: the parameter rows follow dx; no block wrote them.
                    let row =
                        unsafe { dx.slice(m * stride + (n + j) * d..m * stride + (n + j + 1) * d) };
                    for (i, o) in row.iter_mut().enumerate() {
                        o.write(sums.chunks(2 * d).map(|s| s[col + i]).sum());
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((p, n + extra, d))))
    }
}
