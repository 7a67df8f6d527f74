//! The GP engine. So far: primitive sets and DEAP-style tree generation
//! (full, grow, ramped half-and-half), used by the property tests and the
//! benches to draw random formulas from the seed primitive set.

pub mod tree;

pub use tree::{Gene, Method, Primitive, PrimitiveSet, Tree};
