//! Reports: plots and charts from plain numbers, tables, and the
//! self-contained HTML page of a run ([`html`]).
//! A leaf of the pipeline: it knows no formula, model or search (callers
//! sample a function or convert their rows first).

pub mod axis;
pub mod chart;
pub mod html;
pub mod number;
pub mod plot;
mod render;
