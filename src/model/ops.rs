//! Differentiable tensor helpers the layers share: log-softmax built from
//! ops that all have a backward (the composed cross-entropy's), and the
//! additive-mask value (the attention softmax and its masks live in
//! [`crate::op::softmax`]).
//!
//! candle-nn 0.11's `ops::softmax_last_dim` (and its fast norms) have no
//! backward: gradients stop there without an error. This form subtracts a
//! *detached* row maximum: log-softmax is invariant to that shift, so its
//! exact gradient does not flow through the maximum, and skipping it saves
//! the backward of `max` (a comparison and a product per element).

use candle_core::{Result, Tensor, D};

pub use crate::op::softmax::{softmax_composed as softmax, MASKED};

/// Log-softmax over the last dimension.
pub fn log_softmax(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let shifted = xs.broadcast_sub(&max)?;
    let log_den = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&log_den)
}
