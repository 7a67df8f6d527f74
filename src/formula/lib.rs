//! actforge's formula compiler core, the left end of the house
//! (ARCHITECTURE.md):
//!
//! ```text
//! syntax → ir → simplify → diff
//! ```
//!
//! `syntax` parses the formula language with positions for diagnostics,
//! `ir` lowers it to a hash-consed DAG over the op table and evaluates it
//! (f64 reference, f32 SIMD), `simplify` rewrites it soundly by interval
//! analysis into a canonical form with a stable hash, and `diff` derives it
//! symbolically from the op table's rules. `stack` is the recursion guard
//! every deep walk uses.
//!
//! Architecture invariant: this crate depends on no tensor library, no
//! CUDA and nothing of `actforge`; it is the only place the formula's
//! meaning is defined (PRIMITIVES.md). The `actforge` crate re-exports these
//! modules under the same names.

// Every unsafe block says why it is sound (STYLE.md habit 9).
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod diff;
pub mod ir;
pub mod simplify;
pub mod stack;
pub mod syntax;
