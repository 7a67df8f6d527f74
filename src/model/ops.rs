//! Differentiable tensor helpers the layers share: softmax and log-softmax
//! built from ops that all have a backward, and the additive-mask value.
//!
//! candle-nn 0.11's `ops::softmax_last_dim` (and its fast norms) have no
//! backward: gradients stop there without an error. These forms subtract a
//! *detached* row maximum: softmax is invariant to that shift, so its exact
//! gradient does not flow through the maximum, and skipping it saves the
//! backward of `max` (a comparison and a product per element).

use candle_core::{Result, Tensor, D};

/// What masked attention scores get added: exp(score + MASKED − max) is 0
/// in f32, yet a row with every key masked stays finite (uniform weights
/// instead of NaN), so padding rows cannot poison a loss.
pub const MASKED: f32 = -1e9;

/// Softmax over the last dimension.
pub fn softmax(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let num = xs.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

/// Log-softmax over the last dimension.
pub fn log_softmax(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let shifted = xs.broadcast_sub(&max)?;
    let log_den = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&log_den)
}
