//! Multi-head attention over a population: projections `[P, D, H·Dh]`,
//! scores `[P, B, H, T, S]` with an optional learned additive term (T5's
//! position bias) broadcast onto them, and the masked softmax of
//! [`crate::op::softmax`] (masks described by a [`ScoreMask`], never
//! materialised on the CPU).
//! The same block serves causal self-attention (with a [`KvCache`] while
//! generating) and T5's cross-attention.

use candle_core::{Result, Tensor};

use super::init::ParamBuilder;
use super::linear::Linear;
use crate::op::softmax::{masked_softmax, ScoreMask};

/// Shape of one attention block.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub d_model: usize,
    pub n_head: usize,
    pub d_head: usize,
}

/// Initial standard deviations of the four projections.
#[derive(Clone, Copy, Debug)]
pub struct AttnInit {
    pub q: f64,
    pub kv: f64,
    pub o: f64,
}

pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    n_head: usize,
    d_head: usize,
    /// Multiplies the scores: 1/sqrt(Dh) for GPT, 1 for T5 (whose q
    /// initialisation carries the scale).
    scale: f64,
}

/// Keys and values of the positions seen so far, `[P, B, H, S, Dh]` each.
#[derive(Default)]
pub struct KvCache {
    kv: Option<(Tensor, Tensor)>,
}

impl KvCache {
    /// Appends the new positions along S and returns all of them.
    pub fn append(&mut self, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        let kv = match self.kv.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 3)?, Tensor::cat(&[&pv, &v], 3)?),
        };
        self.kv = Some(kv.clone());
        Ok(kv)
    }
}

impl Attention {
    /// Parameters `{name}.{q,k,v,o}.weight` (and `.bias` with `bias`).
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        s: AttnShape,
        init: AttnInit,
        bias: bool,
        scale: f64,
    ) -> crate::Result<Attention> {
        let inner = s.n_head * s.d_head;
        let lin = |n: &str, dims, std| Linear::new(pb, &format!("{name}.{n}"), dims, std, bias);
        Ok(Attention {
            q: lin("q", (s.d_model, inner), init.q)?,
            k: lin("k", (s.d_model, inner), init.kv)?,
            v: lin("v", (s.d_model, inner), init.kv)?,
            o: lin("o", (inner, s.d_model), init.o)?,
            n_head: s.n_head,
            d_head: s.d_head,
            scale,
        })
    }

    /// `[P, B·T, H·Dh]` → `[P, B, H, T, Dh]` (contiguous).
    fn split_heads(&self, x: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let p = x.dim(0)?;
        x.reshape((p, b, t, self.n_head, self.d_head))?
            .transpose(2, 3)?
            .contiguous()
    }

    /// Queries of `x` `[P, B·T, D]`: `[P, B, H, T, Dh]`.
    pub fn queries(&self, x: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        self.split_heads(&self.q.forward(x)?, b, t)
    }

    /// Keys and values of `x` `[P, B·S, D]`: `[P, B, H, S, Dh]` each.
    pub fn keys_values(&self, x: &Tensor, b: usize, s: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(x)?, b, s)?,
            self.split_heads(&self.v.forward(x)?, b, s)?,
        ))
    }

    /// softmax(scale·q·kᵀ + bias + masks) · v, merged and projected:
    /// `[P, B·T, D]`. The bias broadcasts onto the scores `[P, B, H, T, S]`;
    /// `mask` hides keys. The matmuls run on `[P·B·H, ·, ·]` (candle's CPU
    /// matmul takes at most two batch dimensions).
    pub fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
        mask: &ScoreMask,
    ) -> Result<Tensor> {
        let (p, b, h, t, dh) = q.dims5()?;
        let s = k.dim(3)?;
        let n = p * b * h;
        let k = k.reshape((n, s, dh))?;
        let scores = q.reshape((n, t, dh))?.matmul(&k.transpose(1, 2)?)?;
        let scores = scores.reshape((p, b, h, t, s))?;
        let weights = match bias {
            None => masked_softmax(&scores, self.scale, mask)?,
            Some(bias) => {
                // x·1 is x: T5's scale costs no pass.
                let scaled = if self.scale == 1.0 {
                    scores
                } else {
                    (scores * self.scale)?
                };
                masked_softmax(&scaled.broadcast_add(bias)?, 1.0, mask)?
            }
        };
        let weights = weights.reshape((n, t, s))?;
        let ctx = weights.matmul(&v.reshape((n, s, dh))?)?;
        let merged = ctx
            .reshape((p, b, h, t, dh))?
            .transpose(2, 3)?
            .reshape((p, b * t, h * dh))?;
        self.o.forward(&merged)
    }
}
