//! Layer norm (GPT) and RMS norm (T5) over the last dimension, through
//! [`crate::op::norm`]: fused ops (one pass per row forward and backward)
//! for f32 on the CPU, elsewhere chains of differentiable tensor ops
//! (candle-nn 0.11's fast norms cut the gradient), which also define the
//! values. Gains and biases are `[P, 1, D]`, inputs `[P, N, D]`.

use candle_core::{Result, Tensor};

use super::init::{Init, ParamBuilder};
use crate::op;

/// `(x − mean) / sqrt(var + eps) · g + b`.
pub struct LayerNorm {
    gain: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Parameters `{name}.weight` (ones) and `{name}.bias` (zeros).
    pub fn new(pb: &ParamBuilder, name: &str, d: usize, eps: f64) -> crate::Result<LayerNorm> {
        Ok(LayerNorm {
            gain: pb.param(&format!("{name}.weight"), &[1, d], Init::Const(1.0))?,
            bias: pb.param(&format!("{name}.bias"), &[1, d], Init::Const(0.0))?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        op::norm::layer_norm(x, &self.gain, &self.bias, self.eps)
    }
}

/// `x / sqrt(mean(x²) + eps) · g` (T5's norm: no centring, no bias).
pub struct RmsNorm {
    gain: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Parameter `{name}.weight`, initialised to `gain`.
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        d: usize,
        gain: f64,
        eps: f64,
    ) -> crate::Result<RmsNorm> {
        Ok(RmsNorm {
            gain: pb.param(&format!("{name}.weight"), &[1, d], Init::Const(gain))?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        op::norm::rms_norm(x, &self.gain, self.eps)
    }
}
