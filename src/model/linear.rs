//! A population of linear maps: weight `[P, in, out]`, optional bias
//! `[P, 1, out]`, applied to `[P, N, in]` with one batched matmul.

use candle_core::{Result, Tensor};

use super::init::{Init, ParamBuilder};

pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Parameters `{name}.weight` (normal(0, std)) and, with `bias`,
    /// `{name}.bias` (zeros).
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        (d_in, d_out): (usize, usize),
        std: f64,
        bias: bool,
    ) -> crate::Result<Linear> {
        let weight = pb.param(&format!("{name}.weight"), &[d_in, d_out], Init::Normal(std))?;
        let bias = match bias {
            true => Some(pb.param(&format!("{name}.bias"), &[1, d_out], Init::Const(0.0))?),
            false => None,
        };
        Ok(Linear { weight, bias })
    }

    /// `x · W` without the bias.
    pub fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)
    }

    /// The bias `[P, 1, out]`, if the map has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `x · W (+ b)` for `x` of shape `[P, N, in]` (the bias add through
    /// [`crate::op::bias`]: one pass forward and backward on the CPU).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        match &self.bias {
            Some(b) => crate::op::bias::add(&y, b),
            None => Ok(y),
        }
    }
}
