//! The attention softmax with its masks, `softmax(scale · scores + causal
//! mask + padding mask)` over the keys, as one fused CPU op with a fused
//! backward, and the same as a chain of candle ops (other devices and
//! dtypes; the oracle of the tests).
//!
//! The masks are described, not materialised: [`ScoreMask`] says which
//! keys a query sees (causally, from an absolute offset, and by a padding
//! mask per batch row). The fused op adds exactly what the composed chain
//! adds, [`MASKED`] per mask that hides a key, in the same order and f32
//! arithmetic, so both see the same scores; the softmax of a row whose
//! keys are all hidden is therefore defined the same way (uniform over the
//! least hidden keys, finite). The backward is `scale · w · (dw − Σ dw·w)`
//! from the saved output `w`, one pass per row.
//!
//! Scores are `[P, B, H, T, S]` (members, batch rows, heads, queries,
//! keys). A learned additive term (T5's position bias) is added by the
//! caller before, with the scale 1.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Device, Layout, Shape, Tensor, D};

use super::cpu::{
    block_rows, f32s, filled, for_blocks, fusable, max_of, msg, simd_fn, sum_by, Shared, LANES,
};
use crate::ir::fastmath;

/// What a hidden score gets added: exp(score + MASKED − max) is 0 in f32,
/// yet a row with every key hidden stays finite (uniform weights instead
/// of NaN), so padding rows cannot poison a loss.
pub const MASKED: f32 = -1e9;

/// Elements of scores per block of rows.
const BLOCK: usize = 1 << 14;

/// Which keys each query may see.
#[derive(Clone, Debug, Default)]
pub struct ScoreMask {
    /// `Some(offset)`: query `i` (absolute position `offset + i`) sees
    /// keys `0..=offset + i` only.
    pub causal: Option<usize>,
    /// Per batch row, which keys are real (`[B][S]` flattened, row-major);
    /// padding keys are hidden.
    pub keys: Option<KeyMask>,
}

/// A padding mask over keys: `[B, S]`, true = a real token.
#[derive(Clone, Debug)]
pub struct KeyMask {
    real: Arc<Vec<bool>>,
    /// 0 on real keys, [`MASKED`] on padding: what the scores get added.
    penalties: Arc<Vec<f32>>,
    rows: usize,
    len: usize,
}

impl KeyMask {
    /// From host rows of equal length.
    pub fn new(rows: &[Vec<bool>]) -> KeyMask {
        let len = rows.first().map_or(0, Vec::len);
        assert!(
            rows.iter().all(|r| r.len() == len),
            "key mask rows differ in length"
        );
        let real = rows.concat();
        let penalties = real.iter().map(|&r| if r { 0.0 } else { MASKED }).collect();
        KeyMask {
            real: Arc::new(real),
            penalties: Arc::new(penalties),
            rows: rows.len(),
            len,
        }
    }

    /// The same rows, each with `k` more real keys at the end (a cache
    /// that grew by `k` positions).
    pub fn extended(&self, k: usize) -> KeyMask {
        let rows: Vec<Vec<bool>> = self
            .real
            .chunks(self.len.max(1))
            .take(self.rows)
            .map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(true, k))
                    .collect()
            })
            .collect();
        if self.len == 0 {
            return KeyMask::new(&vec![vec![true; k]; self.rows]);
        }
        KeyMask::new(&rows)
    }

    /// `(B, S)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.len)
    }

    /// The additive mask `[B, 1, 1, S]` of the composed chain.
    fn additive(&self, device: &Device) -> candle_core::Result<Tensor> {
        let data: Vec<f32> = self
            .real
            .iter()
            .map(|&r| if r { 0.0 } else { MASKED })
            .collect();
        Tensor::from_vec(data, (self.rows, 1, 1, self.len), device)
    }
}

/// The causal additive mask `[T, S]` of the composed chain.
pub fn causal_mask(
    t: usize,
    s: usize,
    offset: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..s).map(move |j| if j > offset + i { MASKED } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (t, s), device)
}

/// `softmax(scale · scores + masks)` over the last dimension of scores
/// `[P, B, H, T, S]`: the fused op for f32 on the CPU, else the composed
/// chain. Differentiable in the scores.
pub fn masked_softmax(
    scores: &Tensor,
    scale: f64,
    mask: &ScoreMask,
) -> candle_core::Result<Tensor> {
    let (_, b, _, _, s) = scores.dims5()?;
    if let Some(k) = &mask.keys {
        if k.dims() != (b, s) {
            return Err(msg(format!(
                "attention: the key mask is {:?} but the scores have {b} rows of {s} keys",
                k.dims()
            )));
        }
    }
    if fusable(scores) {
        let op = MaskedSoftmax {
            scale: scale as f32,
            mask: mask.clone(),
        };
        return scores.apply_op1(op);
    }
    masked_softmax_composed(scores, scale, mask)
}

/// [`masked_softmax`] as candle ops: scale, the additive masks broadcast
/// onto the scores, the softmax of a detached row maximum.
pub fn masked_softmax_composed(
    scores: &Tensor,
    scale: f64,
    mask: &ScoreMask,
) -> candle_core::Result<Tensor> {
    let (_, _, _, t, s) = scores.dims5()?;
    let mut x = (scores * scale)?;
    if let Some(offset) = mask.causal {
        x = x.broadcast_add(&causal_mask(t, s, offset, scores.device())?.to_dtype(x.dtype())?)?;
    }
    if let Some(k) = &mask.keys {
        x = x.broadcast_add(
            &k.additive(scores.device())?
                .unsqueeze(0)?
                .to_dtype(x.dtype())?,
        )?;
    }
    softmax_composed(&x)
}

/// Softmax over the last dimension from candle ops that all have a
/// backward (candle-nn's `softmax_last_dim` has none). The row maximum is
/// detached: softmax does not change under that shift, so its exact
/// gradient does not flow through the maximum.
pub fn softmax_composed(xs: &Tensor) -> candle_core::Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let num = xs.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

/// The fused forward.
struct MaskedSoftmax {
    scale: f32,
    mask: ScoreMask,
}

/// The fused backward: (w, dw) → d scores.
struct SoftmaxBackward {
    scale: f32,
}

/// The scores of one block of rows and where they sit.
struct Rows<'a> {
    /// Scores of rows `r0..` (`ss` each).
    x: &'a [f32],
    r0: usize,
    /// Keys per row, queries per head, heads, batch rows.
    ss: usize,
    ts: usize,
    hs: usize,
    bs: usize,
}

simd_fn! {
    /// A block of rows: `w = softmax(((s · scale) + c) + k)` with the causal
    /// penalty `c` on keys after the query's last visible one and the
    /// padding penalty `k` from the key mask. One SIMD dispatch per block.
    ///
    /// Each row is worked on in a buffer padded with −∞ to a multiple of
    /// [`LANES`], so every pass runs whole vectors (rows are short: a
    /// few dozen keys). The padding changes no bit: it is the max's
    /// identity, its exponentials are +0, and [`sum_by`] and [`max_of`]
    /// put element `j` in lane `j % LANES` with or without it.
    fn forward_rows(rows: &Rows, scale: f32, causal: Option<usize>, pen: Option<&[f32]>, w: &mut [f32]) {
        let Rows { x, r0, ss, ts, hs, bs } = *rows;
        let mut buf = vec![f32::NEG_INFINITY; ss.div_ceil(LANES) * LANES];
        for (k, (row, out)) in x.chunks_exact(ss).zip(w.chunks_exact_mut(ss)).enumerate() {
            let r = r0 + k;
            let visible = causal.map_or(ss, |off| off + r % ts + 1);
            let o = &mut buf[..ss];
            for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                let c = if j >= visible { MASKED } else { 0.0 };
                *o = (v * scale) + c;
            }
            match pen {
                Some(p) => {
                    let b = r / (ts * hs) % bs;
                    for (o, &kj) in o.iter_mut().zip(&p[b * ss..(b + 1) * ss]) {
                        *o += kj;
                    }
                }
                None => o.iter_mut().for_each(|o| *o += 0.0),
            }
            let m = max_of(&buf);
            for o in buf.iter_mut() {
                *o = fastmath::exp(*o - m);
            }
            let den = sum_by(&buf, |_, v| v);
            for (d, &e) in out.iter_mut().zip(&buf) {
                *d = e / den;
            }
            buf[ss..].fill(f32::NEG_INFINITY);
        }
    }
}

simd_fn! {
    /// A block of rows backward: `ds = scale · (w · (dw − Σ dw·w))`.
    fn backward_rows(w: &[f32], dw: &[f32], ss: usize, scale: f32, ds: &mut [std::mem::MaybeUninit<f32>]) {
        for ((wr, gr), dr) in w.chunks_exact(ss).zip(dw.chunks_exact(ss)).zip(ds.chunks_exact_mut(ss)) {
            let dot = sum_by(wr, |j, v| v * gr[j]);
            for ((o, &wj), &gj) in dr.iter_mut().zip(wr).zip(gr) {
                o.write(scale * (wj * (gj - dot)));
            }
        }
    }
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "actforge-masked-softmax"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        let [_, bs, hs, ts, ss] = dims else {
            return Err(msg(format!("masked softmax: scores {dims:?} are not 5-D")));
        };
        let (bs, hs, ts, ss) = (*bs, *hs, *ts, *ss);
        let x = f32s(self.name(), st, l)?;
        let n_rows = l.shape().elem_count() / ss.max(1);
        let rows = block_rows(ss, BLOCK);
        let mut w = vec![0.0f32; n_rows * ss];
        let out = Shared::new(&mut w);
        let pen = self.mask.keys.as_ref().map(|k| k.penalties.as_slice());
        for_blocks(n_rows.div_ceil(rows), |blk| {
            let r0 = blk * rows;
            let r1 = (r0 + rows).min(n_rows);
            // SAFETY: each block index comes once; blocks are disjoint.
            let wb = unsafe { out.slice(r0 * ss..r1 * ss) };
            let block = Rows {
                x: &x[r0 * ss..r1 * ss],
                r0,
                ss,
                ts,
                hs,
                bs,
            };
            forward_rows(&block, self.scale, self.mask.causal, pen, wb);
        });
        Ok((CpuStorage::F32(w), l.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let op = SoftmaxBackward { scale: self.scale };
        Ok(Some(res.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "actforge-masked-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(msg("masked softmax backward: shapes differ"));
        }
        let ss = *l1.shape().dims().last().unwrap_or(&1);
        let (w, dw) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        let n_rows = w.len() / ss.max(1);
        let rows = block_rows(ss, BLOCK);
        let out = filled(w.len(), |ds| {
            let shared = Shared::new(ds);
            for_blocks(n_rows.div_ceil(rows), |blk| {
                let r0 = blk * rows;
                let r1 = (r0 + rows).min(n_rows);
                // SAFETY: each block index comes once; blocks are disjoint.
                let db = unsafe { shared.slice(r0 * ss..r1 * ss) };
                let at = r0 * ss..r1 * ss;
                backward_rows(&w[at.clone()], &dw[at], ss, self.scale, db);
            })
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
