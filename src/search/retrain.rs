//! The final stage of a search: the hall of fame retrained on the full
//! data next to GELU, over several seeds, with statistics (mean, 95%
//! interval, Welch's p against GELU), as `actforge train` compares
//! activations.
//!
//! [`Retrain`] is what the fitness side implements (the real one runs the
//! `train` comparison; the synthetic evaluator has its own); this module
//! turns its per-seed fitnesses into the table and `final.json`.
//!
//! Uses `metrics` (statistics) and `store::files`; nothing above `search`.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::metrics::{summarize, welch_p};

/// One activation of the final comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entrant {
    /// `gelu`, `hof-1`, `hof-2`, …
    pub label: String,
    pub formula: String,
}

/// The per-seed results of one entrant.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrainResult {
    pub label: String,
    pub formula: String,
    /// One fitness per seed, in the order of the seeds; `None`: that run
    /// failed.
    pub runs: Vec<Option<f64>>,
    /// Whatever else the trainer reports (per-metric summaries, files).
    pub metrics: Map<String, Value>,
}

/// Retrains entrants on the full data, one run per seed. `dir` is a folder
/// of the run directory (not yet created) that the trainer may create and
/// fill with its own files (results, curves).
pub trait Retrain {
    fn retrain(
        &self,
        entrants: &[Entrant],
        seeds: &[u64],
        dir: &Path,
    ) -> Result<Vec<RetrainResult>>;
}

/// One row of the final table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    pub formula: String,
    pub n_ok: usize,
    pub mean: f64,
    pub ci95: (f64, f64),
    /// Welch's two-sided p against the first entrant (`None` for the first
    /// or when undefined).
    pub welch_p: Option<f64>,
}

/// The table: mean and interval of each entrant's successful runs, and
/// Welch's p against the first entrant (GELU).
pub fn table(results: &[RetrainResult]) -> Vec<Row> {
    let ok = |r: &RetrainResult| -> Vec<f64> { r.runs.iter().flatten().copied().collect() };
    let base = results.first().map(ok).unwrap_or_default();
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let xs = ok(r);
            let s = summarize(&xs);
            Row {
                label: r.label.clone(),
                formula: r.formula.clone(),
                n_ok: xs.len(),
                mean: s.mean,
                ci95: s.ci95,
                welch_p: if i == 0 { None } else { welch_p(&xs, &base) },
            }
        })
        .collect()
}

fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// The JSON of the comparison (`final.json`): `{"seeds", "summary":
/// [{"activation", "formula", "runs_ok", "fitness": {"mean", "ci95"},
/// "welch_p"}], "runs": [{"activation", "seed", "status", "fitness"}]}`.
pub fn to_json(results: &[RetrainResult], seeds: &[u64]) -> Value {
    let summary: Vec<Value> = table(results)
        .iter()
        .map(|r| {
            json!({
                "activation": r.label,
                "formula": r.formula,
                "runs_ok": r.n_ok,
                "fitness": {"mean": num(r.mean), "ci95": [num(r.ci95.0), num(r.ci95.1)]},
                "welch_p": r.welch_p.map_or(Value::Null, num),
            })
        })
        .collect();
    let runs: Vec<Value> = results
        .iter()
        .flat_map(|r| {
            r.runs.iter().zip(seeds).map(move |(f, s)| {
                json!({
                    "activation": r.label,
                    "seed": s,
                    "status": if f.is_some() { "ok" } else { "failed" },
                    "fitness": f.map_or(Value::Null, num),
                })
            })
        })
        .collect();
    let metrics: Map<String, Value> = results
        .iter()
        .map(|r| (r.label.clone(), Value::Object(r.metrics.clone())))
        .collect();
    json!({"seeds": seeds, "summary": summary, "runs": runs, "metrics": metrics})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compares_with_the_first_entrant() {
        let r = |label: &str, runs: Vec<Option<f64>>| RetrainResult {
            label: label.into(),
            formula: "x".into(),
            runs,
            metrics: Map::new(),
        };
        let rows = table(&[
            r("gelu", vec![Some(1.0), Some(1.1), Some(0.9)]),
            r("a", vec![Some(2.0), None, Some(2.2)]),
        ]);
        assert_eq!(rows[0].welch_p, None);
        assert_eq!(rows[1].n_ok, 2);
        assert!((rows[1].mean - 2.1).abs() < 1e-12);
        assert!(rows[1].welch_p.unwrap() < 0.05);
    }
}
