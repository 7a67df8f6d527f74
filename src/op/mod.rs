//! Activations as candle ops: the fused custom op (CPU and CUDA) with a
//! fused backward, the composed chain of candle ops (baseline and oracle),
//! and [`Activation`], the one type models take. Beside them, the rest of a
//! training step's small-op chains as fused CPU ops with fused backwards
//! ([`norm`], [`softmax`], [`xent`], the in-place [`adamw`] update), each
//! with its composed chain for other devices and dtypes. A lockstep
//! population applies its members' formulas in one op
//! ([`PopulationActivation`]).

pub mod adamw;
pub mod bias;
pub mod composed;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod dtype;
pub mod fused;
pub mod norm;
pub mod population;
pub mod softmax;
pub mod xent;

use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;

pub use composed::ComposedActivation;
pub use cpu::fusable;
pub use fused::{FusedActivation, FusedBackward};
pub use population::PopulationActivation;

/// An MLP activation: GELU, a fused formula, or the same formula composed
/// of candle ops.
#[derive(Clone)]
pub enum Activation {
    /// GELU, the tanh approximation: candle's `gelu` op on CUDA; on the CPU
    /// the fused op of `gelu_like(x)`, the same formula in one pass.
    Gelu,
    Fused(FusedActivation),
    Composed(ComposedActivation),
}

/// GELU on the CPU: the fused evaluator of `gelu_like(x)`, candle's GELU
/// formula (the tanh approximation), one pass forward and one backward
/// instead of candle's unary op and its chain of backward ops.
fn cpu_gelu() -> &'static FusedActivation {
    static GELU: std::sync::OnceLock<FusedActivation> = std::sync::OnceLock::new();
    GELU.get_or_init(|| FusedActivation::new("gelu_like(x)").expect("gelu_like(x) is a formula"))
}

impl Activation {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu if x.device().is_cpu() => cpu_gelu().forward(x),
            Activation::Gelu => x.gelu(),
            Activation::Fused(f) => f.forward(x),
            Activation::Composed(c) => c.forward(x),
        }
    }

    /// `f(x + b)` for `x [P, N, F]` and a bias `b [P, 1, F]`: the fused
    /// activation folds the bias add into its pass on the CPU
    /// ([`FusedActivation::forward_bias`]); the others add it first.
    pub fn forward_bias(&self, x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Fused(f) => f.forward_bias(x, b),
            Activation::Gelu if x.device().is_cpu() => cpu_gelu().forward_bias(x, b),
            _ => self.forward(&x.broadcast_add(b)?),
        }
    }

    /// `gelu`, `fused:FORMULA` or `composed:FORMULA`.
    pub fn parse(spec: &str) -> crate::Result<Activation> {
        let spec = spec.trim();
        if spec == "gelu" {
            return Ok(Activation::Gelu);
        }
        if let Some(f) = spec.strip_prefix("fused:") {
            return Ok(Activation::Fused(FusedActivation::new(f)?));
        }
        if let Some(f) = spec.strip_prefix("composed:") {
            return Ok(Activation::Composed(ComposedActivation::new(f)?));
        }
        Err(crate::Error::Usage(format!(
            "activation `{spec}`: expected `gelu`, `fused:FORMULA` or `composed:FORMULA`"
        )))
    }
}

impl FromStr for Activation {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Activation> {
        Activation::parse(s)
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Gelu => f.write_str("gelu"),
            Activation::Fused(a) => write!(f, "fused:{}", a.formula()),
            Activation::Composed(a) => write!(f, "composed:{}", a.formula()),
        }
    }
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
