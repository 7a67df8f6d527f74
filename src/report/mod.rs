//! Reports: plots and charts from plain numbers, and tables.
//! A leaf of the pipeline: it knows no formula, model or search (callers
//! sample a function or convert their rows first).

pub mod axis;
pub mod chart;
pub mod number;
pub mod plot;
