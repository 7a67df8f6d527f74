//! actforge: fused CUDA kernels for activation functions evolved by genetic
//! programming.
//!
//! The pipeline flows one way; a module uses only modules before it:
//!
//! ```text
//! syntax → ir → simplify → diff → (codegen → runtime → op → …) → cli
//! ```
//!
//! ```
//! let f = actforge::ir::parse("gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))")?;
//! let fx = actforge::diff::Function::new(&f);
//! assert!((fx.value(1.0) - 0.6099).abs() < 1e-3);
//! # Ok::<(), actforge::syntax::Diagnostic>(())
//! ```

pub mod cli;
pub mod diff;
pub mod error;
pub mod ir;
pub mod report;
pub mod search;
pub mod simplify;
pub mod syntax;

pub use error::{Error, Result};
