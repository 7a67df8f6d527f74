//! The GP genome: primitive sets, DEAP-style prefix trees and their
//! generation (full, grow, ramped half-and-half), crossover and mutations,
//! the static bloat limit, DEAP's `varAnd`/`varOr` with clone flags, the
//! dedup keys of offspring (canonical hash and functional fingerprint), the
//! serializable random number generator every operator draws from, and
//! the operators on fitness vectors: objectives with a direction each
//! ([`objectives`]), tournament, double tournament and best selection
//! ([`select`]), NSGA-II ([`nsga2`]), the hall of fame and the Pareto
//! front ([`archive`]).
//!
//! Everything here is pure and training-free: the same seed gives the same
//! trees on every machine. The engine ([`crate::search`]) drives it.
//!
//! Pipeline position: after `simplify`, before `diff`. This module may use
//! `syntax`, `ir`, `simplify` and the leaves (`error`); it must not import
//! `diff`, `codegen`, `runtime`, `op`, or anything above them.

pub mod archive;
pub mod crossover;
pub mod erc;
pub mod fingerprint;
pub mod generate;
pub mod key;
pub mod limit;
pub mod mutate;
pub mod nsga2;
pub mod objectives;
pub mod pset;
pub mod rng;
pub mod select;
pub mod sets;
pub mod tree;
pub mod vary;

pub use crossover::cx_one_point;
pub use erc::{Ephemeral, ErcKind};
pub use fingerprint::{probe_points, Fingerprint, FunctionIndex};
pub use generate::Method;
pub use key::{syntactic_hash, Canonical};
pub use limit::Limit;
pub use mutate::{EphemeralMode, Mutation};
pub use pset::{Primitive, PrimitiveSet, Terminal};
pub use rng::{Draw, Prng};
pub use tree::{Gene, Tree};
pub use vary::{var_and, var_or, Offspring, Origin, Variation};
