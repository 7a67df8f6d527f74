//! Masked token cross-entropy as one fused CPU op (log-softmax, the
//! target's log-probability, the mask and the mean in one pass per row),
//! whose backward is one more pass per row (softmax − one-hot, weighted).
//!
//! For logits `[P, N, V]`, targets `[N]` and weights `[N]` (the loss mask,
//! shared by the members) the op gives `loss[p] = −Σᵢ wᵢ·log softmax(xₚᵢ)[tᵢ]
//! / max(count, 1)`, `count` being the number of tokens masked in, exactly
//! what `model::loss`'s composed chain computes. The forward keeps each
//! row's log-sum-exp for the backward (no exponential is taken twice) and
//! skips the exponentials of rows with weight 0, which only need to be
//! checked for the non-finite values that make the composed loss NaN
//! (`0 · NaN`): a NaN or +∞ logit, or a target logit of −∞.
//!
//! f32 on the CPU; callers take the composed chain elsewhere (see
//! [`fusable`](super::cpu::fusable)).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::cpu::{block_rows, f32s, filled, for_blocks, max_of, msg, simd_fn, sum_by, Shared};
use crate::ir::fastmath;

/// Elements of logits per block of rows.
const BLOCK: usize = 1 << 15;

/// The loss of one member's rows and what the backward needs.
struct Targets {
    ids: Vec<u32>,
    weights: Vec<f32>,
    count: usize,
}

/// The fused forward: logits `[P, N, V]` → loss `[P]`.
struct Xent {
    t: Arc<Targets>,
    /// Each row's log-sum-exp `[P·N]` from the forward (NaN-free rows of
    /// weight 0 keep 0: the backward writes zeros there).
    lse: Arc<Mutex<Option<Vec<f32>>>>,
}

/// The fused backward: (logits `[P, N, V]`, dloss `[P]`) → dlogits.
struct XentBackward {
    t: Arc<Targets>,
    lse: Option<Vec<f32>>,
}

/// `loss[p]` as the model's masked cross-entropy defines it, for
/// f32 logits `[P, N, V]` on the CPU, differentiable; `ids` and `weights`
/// have N elements, `count` is the number of tokens masked in.
pub fn masked_cross_entropy(
    logits: &Tensor,
    ids: Vec<u32>,
    weights: Vec<f32>,
    count: usize,
) -> candle_core::Result<Tensor> {
    let (_, n, v) = logits.dims3()?;
    if ids.len() != n || weights.len() != n {
        return Err(msg(format!(
            "fused cross-entropy: {n} rows of logits but {} targets and {} weights",
            ids.len(),
            weights.len()
        )));
    }
    if let Some(&bad) = ids.iter().find(|&&t| t as usize >= v) {
        return Err(msg(format!(
            "fused cross-entropy: target id {bad} is outside the {v} logits"
        )));
    }
    let op = Xent {
        t: Arc::new(Targets {
            ids,
            weights,
            count,
        }),
        lse: Arc::default(),
    };
    logits.apply_op1(op)
}

/// Is a row of weight 0 one that makes the composed loss NaN (`0 · x` with
/// x NaN or infinite)?
fn poisons(row: &[f32], target: usize) -> bool {
    row.iter().any(|v| v.is_nan() || *v == f32::INFINITY) || row[target] == f32::NEG_INFINITY
}

simd_fn! {
    /// log Σ exp(x) over a row (shifted by its maximum).
    fn log_sum_exp(x: &[f32]) -> f32 {
        let m = max_of(x);
        let s = sum_by(x, |_, v| fastmath::exp(v - m));
        m + s.ln()
    }
}

simd_fn! {
    /// `dx = c · (exp(x − lse) − onehot(target))`.
    fn softmax_minus_onehot(x: &[f32], lse: f32, target: usize, c: f32, dx: &mut [std::mem::MaybeUninit<f32>]) {
        for (d, &v) in dx.iter_mut().zip(x) {
            d.write(c * fastmath::exp(v - lse));
        }
        // SAFETY: written just above.
        let t = unsafe { dx[target].assume_init_mut() };
        *t -= c;
    }
}

impl Targets {
    fn rows(&self) -> usize {
        self.ids.len()
    }
}

impl CustomOp1 for Xent {
    fn name(&self) -> &'static str {
        "actforge-xent"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, v) = l.shape().dims3()?;
        let x = f32s(self.name(), s, l)?;
        let t = &self.t;
        // Per (member, row): its log-sum-exp and its term of the sum.
        let mut lse = vec![0.0f32; p * n];
        let mut term = vec![0.0f64; p * n];
        let rows = block_rows(v, BLOCK);
        let blocks = (p * n).div_ceil(rows);
        let (lse_out, term_out) = (Shared::new(&mut lse), Shared::new(&mut term));
        for_blocks(blocks, |b| {
            let range = b * rows..((b + 1) * rows).min(p * n);
            // SAFETY: each block index comes once; blocks are disjoint.
            let (ls, ts) = unsafe { (lse_out.slice(range.clone()), term_out.slice(range.clone())) };
            for (k, r) in range.enumerate() {
                let i = r % n;
                let row = &x[r * v..(r + 1) * v];
                let target = t.ids[i] as usize;
                let w = t.weights[i];
                if w == 0.0 {
                    ts[k] = if poisons(row, target) { f64::NAN } else { 0.0 };
                    continue;
                }
                let z = log_sum_exp(row);
                ls[k] = z;
                ts[k] = f64::from(w) * f64::from(row[target] - z);
            }
        });
        let scale = -1.0 / t.count.max(1) as f64;
        let loss: Vec<f32> = term
            .chunks(n.max(1))
            .map(|member| (member.iter().sum::<f64>() * scale) as f32)
            .chain(std::iter::repeat(0.0))
            .take(p)
            .collect();
        *self.lse.lock().expect("lse lock") = Some(lse);
        Ok((CpuStorage::F32(loss), Shape::from(p)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let lse = self.lse.lock().expect("lse lock").take();
        let op = XentBackward {
            t: self.t.clone(),
            lse,
        };
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

impl CustomOp2 for XentBackward {
    fn name(&self) -> &'static str {
        "actforge-xent-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, v) = l1.shape().dims3()?;
        let x = f32s(self.name(), s1, l1)?;
        let g = f32s(self.name(), s2, l2)?;
        if g.len() != p || self.t.rows() != n {
            return Err(msg(
                "fused cross-entropy backward: shapes do not match the forward",
            ));
        }
        let lse: std::borrow::Cow<[f32]> = match &self.lse {
            Some(z) if z.len() == p * n => z.into(),
            _ => (0..p * n)
                .map(|r| log_sum_exp(&x[r * v..(r + 1) * v]))
                .collect::<Vec<_>>()
                .into(),
        };
        let t = &self.t;
        let inv = 1.0 / t.count.max(1) as f32;
        let rows = block_rows(v, BLOCK);
        let blocks = (p * n).div_ceil(rows);
        let out = filled(p * n * v, |dx| {
            let shared = Shared::new(dx);
            for_blocks(blocks, |b| {
                let range = b * rows..((b + 1) * rows).min(p * n);
                // SAFETY: each block index comes once; blocks are disjoint.
                let d = unsafe { shared.slice(range.start * v..range.end * v) };
                for (k, r) in range.enumerate() {
                    let (m, i) = (r / n, r % n);
                    let dr = &mut d[k * v..(k + 1) * v];
                    let w = t.weights[i];
                    if w == 0.0 {
                        dr.fill(std::mem::MaybeUninit::new(0.0));
                        continue;
                    }
                    let c = g[m] * (w * inv);
                    let row = &x[r * v..(r + 1) * v];
                    softmax_minus_onehot(row, lse[r], t.ids[i] as usize, c, dr);
                }
            })
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
