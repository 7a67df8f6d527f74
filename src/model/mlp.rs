//! The MLP block `W2 · act(W1 x + b1) + b2` with one pluggable
//! [`Activation`] per population member; the first bias is added inside
//! the activation ([`Activation::forward_bias`]: one fused pass on the CPU).

use candle_core::{Result, Tensor};

use super::linear::Linear;
use crate::op::{Activation, PopulationActivation};

pub struct Mlp {
    pub w1: Linear,
    pub w2: Linear,
}

impl Mlp {
    /// `x` is `[P, N, D]`; member `p` uses `acts[p]`.
    pub fn forward(&self, x: &Tensor, acts: &[Activation]) -> Result<Tensor> {
        let h = apply_activations(&self.w1.matmul(x)?, self.w1.bias(), acts)?;
        self.w2.forward(&h)
    }
}

/// Applies `acts[p]` to slice `p` of the leading dimension, after adding
/// slice `p` of the bias `[P, 1, F]` when there is one. One call when
/// every member has the same activation (P = 1 included), or when they
/// differ but all fit one population op (fused formulas and GELU); a
/// slice per member otherwise (composed activations).
pub fn apply_activations(x: &Tensor, bias: Option<&Tensor>, acts: &[Activation]) -> Result<Tensor> {
    let apply = |a: &Activation, x: &Tensor, b: Option<Tensor>| match b {
        Some(b) => a.forward_bias(x, &b),
        None => a.forward(x),
    };
    let first = acts[0].to_string();
    if acts[1..].iter().all(|a| a.to_string() == first) {
        return apply(&acts[0], x, bias.cloned());
    }
    if let Some(pop) = PopulationActivation::of(acts) {
        return match bias {
            Some(b) => pop.forward_bias(x, b),
            None => pop.forward(x),
        };
    }
    let parts = acts
        .iter()
        .enumerate()
        .map(|(p, a)| {
            let b = bias.map(|b| b.narrow(0, p, 1)).transpose()?;
            apply(a, &x.narrow(0, p, 1)?, b)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 0)
}
