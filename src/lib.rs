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
//! Leaves, usable from anywhere above them: `error`, `limits` (the sizes
//! served, one constant each), `device` (where work runs: `cpu`, `cuda`,
//! `cuda:N`), `data` (corpora,
//! tokenizers, splits, batches), `metrics` (BLEU, chrF, statistics),
//! `store` (run-directory files: atomic writes, JSONL logs, CSV, locks,
//! symlink-safe writes, bare-name checks), `stack` (the recursion guard)
//! and `report` (plots and tables from plain numbers).
//!
//! Example (`examples/library.rs`, run as a doc test):
//!
// Every unsafe block says why it is sound (STYLE.md habit 9).
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc = concat!("```\n", include_str!("../examples/library.rs"), "\n```")]

pub mod bench;
pub mod cli;
pub mod codegen;
pub mod data;
pub mod device;
pub mod error;
pub mod experiment;
pub mod export;
pub mod fitness;
pub mod gp;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod op;
pub mod report;
pub mod runtime;
pub mod search;
pub mod store;
pub mod tasks;

pub use error::{Error, Result};

// The formula compiler's core is its own crate (`src/formula`, no candle):
// its modules keep their paths here.
pub use actforge_formula::{diff, ir, simplify, stack, syntax};
