//! Reports: plots of activations and their derivatives (and, later, tables
//! and logs of searches and benchmarks).

pub mod plot;
