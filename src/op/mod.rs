//! Activations as candle ops: the fused custom op (CPU and CUDA) with a
//! fused backward, the composed chain of candle ops (baseline and oracle),
//! and [`Activation`], the one type models take.

pub mod composed;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod fused;

use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;

pub use composed::ComposedActivation;
pub use fused::{FusedActivation, FusedBackward};

/// An MLP activation: candle's built-in GELU, a fused formula, or the same
/// formula composed of candle ops.
#[derive(Clone)]
pub enum Activation {
    /// candle's `gelu` (the tanh approximation).
    Gelu,
    Fused(FusedActivation),
    Composed(ComposedActivation),
}

impl Activation {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => x.gelu(),
            Activation::Fused(f) => f.forward(x),
            Activation::Composed(c) => c.forward(x),
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
