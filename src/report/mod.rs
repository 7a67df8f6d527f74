//! Reports: plots of activations and their derivatives, standalone kernel
//! packages (`export`), and (later) tables and logs of searches and
//! benchmarks.

pub mod axis;
pub mod chart;
pub mod export;
pub mod files;
pub mod number;
pub mod plot;
