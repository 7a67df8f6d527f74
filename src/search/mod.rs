//! The GP engine's pure selection and archive operators: fitness as plain
//! `f64` vectors with a direction per objective ([`objectives`]),
//! tournament, double tournament and best selection ([`select`]), NSGA-II
//! ([`nsga2`]), the hall of fame and the Pareto front archive
//! ([`archive`]). The genome (trees, variation, dedup keys) is
//! [`crate::gp`].
//!
//! The engine (population loop, evaluation, dedup cache, screening,
//! checkpoints) builds on these.

pub mod archive;
pub mod nsga2;
pub mod objectives;
pub mod select;
