//! actforge: fused CUDA kernels for activation functions evolved by genetic
//! programming.
//!
//! The pipeline flows one way; a module uses only modules before it:
//!
//! ```text
//! syntax → ir → simplify → gp → diff → (codegen → runtime → op → model → fitness
//!        → experiment) → search → report → cli
//! ```
//!
//! Example (`examples/library.rs`, run as a doc test):
//!
#![doc = concat!("```\n", include_str!("../examples/library.rs"), "\n```")]

pub mod bench;
pub mod cli;
pub mod codegen;
pub mod data;
pub mod diff;
pub mod error;
pub mod experiment;
pub mod export;
pub mod fitness;
pub mod gp;
pub mod ir;
pub mod metrics;
pub mod model;
pub mod op;
pub mod report;
pub mod runtime;
pub mod search;
pub mod simplify;
pub mod syntax;
pub mod tasks;

pub use error::{Error, Result};
