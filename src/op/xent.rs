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

use super::cpu::{
    block_rows, f32s, filled, for_blocks, matmul_into, max_of, msg, simd_fn, sum_by, Mat, Shared,
};
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
    check_targets(&ids, &weights, n, v)?;
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

simd_fn! {
    /// [`softmax_minus_onehot`] over the row itself: `x = c · (exp(x − lse)
    /// − onehot(target))`, the same arithmetic.
    fn softmax_minus_onehot_in_place(x: &mut [f32], lse: f32, target: usize, c: f32) {
        for d in x.iter_mut() {
            *d = c * fastmath::exp(*d - lse);
        }
        x[target] -= c;
    }
}

impl Targets {
    fn rows(&self) -> usize {
        self.ids.len()
    }
}

/// Per member the loss of logits `x [P, N, V]`, and each row's
/// log-sum-exp (0 for rows of weight 0).
fn losses(x: &[f32], (p, n, v): (usize, usize, usize), t: &Targets) -> (Vec<f32>, Vec<f32>) {
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
    (loss, lse)
}

impl CustomOp1 for Xent {
    fn name(&self) -> &'static str {
        "actforge-xent"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, v) = l.shape().dims3()?;
        let x = f32s(self.name(), s, l)?;
        let (loss, lse) = losses(&x, (p, n, v), &self.t);
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

/// The LM head tied to the token embedding and the loss as one op:
/// (h `[P, N, D]`, wte `[P, V, D]`) → loss `[P]`, where the logits are
/// `h · wteᵀ`. Keeps the logits for the backward, which turns them into
/// their gradient in place.
struct TiedHead {
    t: Arc<Targets>,
    saved: Arc<Mutex<Option<Saved>>>,
}

/// The forward's logits `[P, N, V]` and each row's log-sum-exp.
struct Saved {
    logits: Vec<f32>,
    lse: Vec<f32>,
}

/// The backward: (h, wte) → `[P, N + V, D]`, rows `0..N` of each member
/// the gradient of h, rows `N..` that of wte.
struct TiedHeadBackward {
    t: Arc<Targets>,
    saved: Mutex<Option<Saved>>,
    /// d loss, `[P]`.
    g: Vec<f32>,
}

/// [`masked_cross_entropy`] of the logits `h · wteᵀ` (a GPT's output head
/// tied to its token embedding) without the logits as a tensor: one op
/// whose forward is the head's matmul (the very `gemm` call candle's
/// `h.matmul(&wte.t())` makes) and the loss pass over its output, and
/// whose backward turns the kept logits into their gradient in place and
/// runs the two matmuls candle's backward would run. The same bits as
/// the head's matmul followed by [`masked_cross_entropy`], without the
/// logits' zeroed buffers and candle's accumulation into a zeroed copy of
/// their gradient. f32 on the CPU.
pub fn tied_head_cross_entropy(
    h: &Tensor,
    wte: &Tensor,
    ids: Vec<u32>,
    weights: Vec<f32>,
    count: usize,
) -> candle_core::Result<Tensor> {
    let (p, n, d) = h.dims3()?;
    let (pw, v, dw) = wte.dims3()?;
    if (pw, dw) != (p, d) {
        return Err(msg(format!(
            "fused LM head: hidden states {:?} do not fit the embedding {:?}",
            h.dims(),
            wte.dims()
        )));
    }
    check_targets(&ids, &weights, n, v)?;
    let op = TiedHead {
        t: Arc::new(Targets {
            ids,
            weights,
            count,
        }),
        saved: Arc::default(),
    };
    h.apply_op2(wte, op)
}

/// Targets and weights fit N rows of V logits.
fn check_targets(ids: &[u32], weights: &[f32], n: usize, v: usize) -> candle_core::Result<()> {
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
    Ok(())
}

/// The head's logits `[P, N, V]` of contiguous `h [P, N, D]` and
/// `wte [P, V, D]`: per member `h · wteᵀ`, wteᵀ read through its
/// transposed strides as candle's matmul reads `wte.t()`.
fn head_logits(h: &[f32], w: &[f32], (p, n, v, d): (usize, usize, usize, usize)) -> Vec<f32> {
    filled(p * n * v, |out| {
        for (m, o) in out.chunks_exact_mut((n * v).max(1)).enumerate().take(p) {
            let lhs = Mat {
                data: &h[m * n * d..(m + 1) * n * d],
                cs: 1,
                rs: d,
            };
            let rhs = Mat {
                data: &w[m * v * d..(m + 1) * v * d],
                cs: d,
                rs: 1,
            };
            matmul_into((n, v, d), lhs, rhs, o);
        }
    })
}

/// The dims of (h, wte) and a check that they fit.
fn head_dims(l1: &Layout, l2: &Layout) -> candle_core::Result<(usize, usize, usize, usize)> {
    let (p, n, d) = l1.shape().dims3()?;
    let (pw, v, dw) = l2.shape().dims3()?;
    if (pw, dw) != (p, d) {
        return Err(msg("fused LM head: hidden states and embedding do not fit"));
    }
    Ok((p, n, v, d))
}

impl CustomOp2 for TiedHead {
    fn name(&self) -> &'static str {
        "actforge-tied-head-xent"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, v, d) = head_dims(l1, l2)?;
        let (h, w) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        let logits = head_logits(&h, &w, (p, n, v, d));
        let (loss, lse) = losses(&logits, (p, n, v), &self.t);
        *self.saved.lock().expect("saved lock") = Some(Saved { logits, lse });
        Ok((CpuStorage::F32(loss), Shape::from(p)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        wte: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, n, _) = h.dims3()?;
        let v = wte.dim(1)?;
        let op = TiedHeadBackward {
            t: self.t.clone(),
            saved: Mutex::new(self.saved.lock().expect("saved lock").take()),
            g: grad.to_dtype(candle_core::DType::F32)?.to_vec1()?,
        };
        let both = h.apply_op2_no_bwd(wte, &op)?;
        Ok((Some(both.narrow(1, 0, n)?), Some(both.narrow(1, n, v)?)))
    }
}

impl CustomOp2 for TiedHeadBackward {
    fn name(&self) -> &'static str {
        "actforge-tied-head-xent-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, n, v, d) = head_dims(l1, l2)?;
        let (h, w) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        if self.g.len() != p || self.t.rows() != n {
            return Err(msg(
                "fused LM head backward: shapes do not match the forward",
            ));
        }
        // The forward's logits, or the same again (a second backward).
        let Saved { mut logits, lse } = match self.saved.lock().expect("saved lock").take() {
            Some(s) if s.logits.len() == p * n * v => s,
            _ => {
                let logits = head_logits(&h, &w, (p, n, v, d));
                let (_, lse) = losses(&logits, (p, n, v), &self.t);
                Saved { logits, lse }
            }
        };
        logits_grad_in_place(&mut logits, &lse, &self.g, (p, n, v), &self.t);
        let dl = logits;
        let out = filled(p * (n + v) * d, |out| {
            let mut dw_t = vec![std::mem::MaybeUninit::<f32>::uninit(); d * v];
            for (m, o) in out
                .chunks_exact_mut(((n + v) * d).max(1))
                .enumerate()
                .take(p)
            {
                let (dh, dw) = o.split_at_mut(n * d);
                let dl_m = Mat {
                    data: &dl[m * n * v..(m + 1) * n * v],
                    cs: 1,
                    rs: v,
                };
                let w_m = Mat {
                    data: &w[m * v * d..(m + 1) * v * d],
                    cs: 1,
                    rs: d,
                };
                let h_m = Mat {
                    data: &h[m * n * d..(m + 1) * n * d],
                    cs: d,
                    rs: 1,
                };
                // candle: grad.matmul(&rhs.t()) and lhs.t().matmul(&grad),
                // the latter [D, V], then transposed back onto wte.
                matmul_into((n, d, v), dl_m, w_m, dh);
                matmul_into((d, v, n), h_m, dl_m, &mut dw_t);
                for (i, row) in dw_t.chunks_exact(v.max(1)).enumerate() {
                    for (j, x) in row.iter().enumerate() {
                        dw[j * d + i] = *x;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((p, n + v, d))))
    }
}

/// The logits' gradient over the logits themselves: row `r` of member
/// `m` becomes `g[m] · wᵢ / count · (softmax − onehot)`, rows of weight 0
/// become 0 (what [`XentBackward`] writes).
fn logits_grad_in_place(
    x: &mut [f32],
    lse: &[f32],
    g: &[f32],
    (p, n, v): (usize, usize, usize),
    t: &Targets,
) {
    let inv = 1.0 / t.count.max(1) as f32;
    let rows = block_rows(v, BLOCK);
    let blocks = (p * n).div_ceil(rows);
    let shared = Shared::new(x);
    for_blocks(blocks, |b| {
        let range = b * rows..((b + 1) * rows).min(p * n);
        // SAFETY: each block index comes once; blocks are disjoint.
        let xb = unsafe { shared.slice(range.start * v..range.end * v) };
        for (k, r) in range.enumerate() {
            let (m, i) = (r / n, r % n);
            let row = &mut xb[k * v..(k + 1) * v];
            let w = t.weights[i];
            if w == 0.0 {
                row.fill(0.0);
                continue;
            }
            let c = g[m] * (w * inv);
            softmax_minus_onehot_in_place(row, lse[r], t.ids[i] as usize, c);
        }
    });
}
