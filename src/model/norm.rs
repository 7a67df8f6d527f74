//! Layer norm (GPT) and RMS norm (T5) over the last dimension, written
//! from differentiable tensor ops (candle-nn 0.11's fast norms cut the
//! gradient). Gains and biases are `[P, 1, D]`, inputs `[P, N, D]`.

use candle_core::{Result, Tensor, D};

use super::init::{Init, ParamBuilder};

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
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.gain)?.broadcast_add(&self.bias)
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
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.gain)
    }
}
