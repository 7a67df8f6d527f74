//! The MLP block `W2 · act(W1 x)` with one pluggable [`Activation`] per
//! population member.

use candle_core::{Result, Tensor};

use super::linear::Linear;
use crate::op::Activation;

pub struct Mlp {
    pub w1: Linear,
    pub w2: Linear,
}

impl Mlp {
    /// `x` is `[P, N, D]`; member `p` uses `acts[p]`.
    pub fn forward(&self, x: &Tensor, acts: &[Activation]) -> Result<Tensor> {
        self.w2
            .forward(&apply_activations(&self.w1.forward(x)?, acts)?)
    }
}

/// Applies `acts[p]` to slice `p` of the leading dimension. One call when
/// every member has the same activation (P = 1 included).
pub fn apply_activations(x: &Tensor, acts: &[Activation]) -> Result<Tensor> {
    let first = acts[0].to_string();
    if acts[1..].iter().all(|a| a.to_string() == first) {
        return acts[0].forward(x);
    }
    let parts = acts
        .iter()
        .enumerate()
        .map(|(p, a)| a.forward(&x.narrow(0, p, 1)?))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 0)
}
