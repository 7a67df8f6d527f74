//! The final stage of a search, its held-out verdict: the hall of fame
//! retrained next to GELU on the whole training split (not the thinned
//! one), for the recipe's full length (or `--final-steps`), with seeds the
//! search never trained with, scored on the test split that nothing else
//! in the search reads; with statistics (mean, 95% interval, the paired
//! difference from GELU with its Holm p and verdict, the minimum
//! detectable effect, Welch's p), as `actforge train` compares
//! activations. A failed run scores the fitness floor.
//!
//! [`Retrain`] is what the fitness side implements (the real one runs the
//! `train` comparison; the synthetic evaluator has its own); this module
//! turns its per-seed fitnesses into the table and `final.json`.
//!
//! Uses `experiment` (paired statistics) and `metrics`; nothing above
//! `search`.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::experiment::{against_baseline, Difference, ALPHA, POWER};
use crate::metrics::{summarize, welch_p, FITNESS_FLOOR};

use super::candidate::Candidate;

/// One activation of the final comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entrant {
    /// `gelu`, `hof-1`, `hof-2`, …
    pub label: String,
    /// The formula (for `gelu`, `gelu(ARG0)`: what a trainer without its
    /// own GELU trains), built once; its text is the hall-of-fame tree's.
    pub candidate: Candidate,
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

/// What the final comparison is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One run per seed and entrant; disjoint from the search's seeds.
    pub seeds: Vec<u64>,
    /// Training steps (`None`: the recipe's full length).
    pub steps: Option<u64>,
}

/// What the final comparison did.
#[derive(Clone, Debug, PartialEq)]
pub struct Retrained {
    /// One per entrant, in order.
    pub results: Vec<RetrainResult>,
    /// The split scored: `test` (the synthetic evaluator's test split is
    /// its finer retrain grid).
    pub split: String,
    /// Training steps per run (`None` where nothing trains).
    pub steps: Option<u64>,
}

/// Retrains entrants on the whole training split and scores them on the
/// test split, one run per seed of `plan`. `dir` is a folder of the run
/// directory (not yet created) that the trainer may create and fill with
/// its own files (results, curves).
pub trait Retrain {
    fn retrain(&self, entrants: &[Entrant], plan: &Plan, dir: &Path) -> Result<Retrained>;
}

/// One row of the final table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    pub formula: String,
    pub n_ok: usize,
    pub runs_failed: usize,
    /// Mean and interval of the fitness over every run, a failed one at
    /// the fitness floor.
    pub mean: f64,
    pub ci95: (f64, f64),
    /// Welch's two-sided p against the first entrant (`None` for the first
    /// or when undefined).
    pub welch_p: Option<f64>,
    /// The paired fitness difference from the first entrant, Holm over the
    /// others (`None` for the first).
    pub vs_baseline: Option<Difference>,
}

/// Each seed's fitness as the statistics count it (a failure at the
/// floor).
fn scored(r: &RetrainResult) -> Vec<Option<f64>> {
    r.runs
        .iter()
        .map(|f| Some(f.unwrap_or(FITNESS_FLOOR)))
        .collect()
}

/// The table: mean and interval of each entrant's fitness (failures at
/// the floor), the paired difference from the first entrant (GELU) with
/// Holm over the others, and Welch's p.
pub fn table(results: &[RetrainResult]) -> Vec<Row> {
    let flat = |v: Vec<Option<f64>>| -> Vec<f64> { v.into_iter().flatten().collect() };
    let base = results.first().map(scored).unwrap_or_default();
    let others: Vec<Vec<Option<f64>>> = results.iter().skip(1).map(scored).collect();
    let diffs = against_baseline(&base, &others, true);
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let xs = flat(scored(r));
            let s = summarize(&xs);
            let n_ok = r.runs.iter().flatten().count();
            Row {
                label: r.label.clone(),
                formula: r.formula.clone(),
                n_ok,
                runs_failed: r.runs.len() - n_ok,
                mean: s.mean,
                ci95: s.ci95,
                welch_p: if i == 0 {
                    None
                } else {
                    welch_p(&xs, &flat(base.clone()))
                },
                vs_baseline: i.checked_sub(1).map(|k| diffs[k]),
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

/// The largest minimum detectable effect over the rows, as % of the first
/// row's (GELU's) mean fitness: every formula's comparison resolves at
/// least this (`None` when no row has one).
pub fn worst_mde_percent(rows: &[Row]) -> Option<f64> {
    let base = rows.first()?.mean;
    rows.iter()
        .filter_map(|r| r.vs_baseline.map(|d| 100.0 * d.mde() / base))
        .filter(|m| m.is_finite())
        .reduce(f64::max)
}

/// The JSON of the comparison (`final.json`): `{"split", "seeds",
/// "steps", "mde" (the largest `fitness_mde_percent` of the rows),
/// "summary":
/// [{"activation", "formula", "runs_ok", "runs_failed", "fitness":
/// {"mean", "ci95"}, "welch_p", "vs_baseline"}], "runs": [{"activation",
/// "seed", "status", "fitness"}]}`; each row after GELU also has
/// `resolution` {"fitness_mde", "fitness_mde_percent" (of GELU's mean
/// fitness), "n", "alpha", "power"}. `vs_baseline` (null for GELU) holds
/// the paired contract `{"<metric>": {"mean_diff", "ci95", "p", "p_holm",
/// "n", "better"}}`: fitness from the runs here, the other metrics from
/// the trainer's own comparison where it made one (`train`'s summary).
pub fn to_json(done: &Retrained, seeds: &[u64]) -> Value {
    let results = &done.results[..];
    let rows = table(results);
    let base_mean = rows.first().map_or(f64::NAN, |r| r.mean);
    let summary: Vec<Value> = rows
        .iter()
        .zip(results)
        .map(|(r, res)| {
            let vs = r.vs_baseline.map(|d| {
                let mut m = match res.metrics.get("vs_baseline") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                m.insert("fitness".into(), d.to_json());
                Value::Object(m)
            });
            json!({
                "activation": r.label,
                "formula": r.formula,
                "runs_ok": r.n_ok,
                "runs_failed": r.runs_failed,
                "fitness": {"mean": num(r.mean), "ci95": [num(r.ci95.0), num(r.ci95.1)]},
                "welch_p": r.welch_p.map_or(Value::Null, num),
                "vs_baseline": vs,
                "resolution": r.vs_baseline.map(|d| json!({
                    "fitness_mde": num(d.mde()),
                    "fitness_mde_percent": num(100.0 * d.mde() / base_mean),
                    "n": d.test.n,
                    "alpha": ALPHA,
                    "power": POWER,
                })),
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
    json!({
        "split": done.split,
        "seeds": seeds,
        "steps": done.steps,
        "mde": worst_mde_percent(&rows).map_or(Value::Null, num),
        "alpha": ALPHA,
        "power": POWER,
        "summary": summary,
        "runs": runs,
        "metrics": metrics,
    })
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
            r("b", vec![Some(2.0), Some(2.15), Some(1.95)]),
        ]);
        assert_eq!(rows[0].welch_p, None);
        assert!(rows[0].vs_baseline.is_none());
        assert_eq!((rows[1].n_ok, rows[1].runs_failed), (2, 1));
        // The failed run counts at the floor (0): mean (2.0 + 0 + 2.2)/3,
        // not 2.1 over the survivors.
        assert!((rows[1].mean - 1.4).abs() < 1e-12);
        let d = rows[1].vs_baseline.unwrap();
        assert_eq!(d.test.n, 3);
        assert!((d.test.mean_diff - 0.4).abs() < 1e-12);
        // b is 1 above GELU on every seed, give or take 0.05.
        let b = rows[2].vs_baseline.unwrap();
        assert!(b.p_holm.unwrap() < 0.05 && b.verdict.better() == Some(true));
        let done = Retrained {
            results: vec![
                r("gelu", vec![Some(1.0), Some(1.1), Some(0.9)]),
                r("b", vec![Some(2.0), Some(2.15), Some(1.95)]),
            ],
            split: "test".into(),
            steps: Some(40),
        };
        let v = to_json(&done, &[11, 12, 13]);
        assert_eq!((&v["split"], &v["steps"]), (&json!("test"), &json!(40)));
        assert_eq!(v["seeds"], json!([11, 12, 13]));
        let row = &v["summary"][1];
        assert_eq!(row["vs_baseline"]["fitness"]["better"], true);
        assert_eq!(row["vs_baseline"]["fitness"]["n"], 3);
        assert_eq!(row["runs_failed"], 0);
        assert!(v["summary"][0]["vs_baseline"].is_null());
        let mde = row["resolution"]["fitness_mde"].as_f64().unwrap();
        assert!(mde > 0.0 && mde < 1.0, "{mde}");
        // One formula: the run's MDE is its MDE, as % of GELU's mean (1.0).
        let pct = row["resolution"]["fitness_mde_percent"].as_f64().unwrap();
        assert!((v["mde"].as_f64().unwrap() - pct).abs() < 1e-9);
        assert!((pct - 100.0 * mde).abs() < 1e-9);
    }
}
