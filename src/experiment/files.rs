//! The files of a finished experiment: `results.json`, `results.csv` and
//! the learning-curve chart.

use std::path::Path;

use serde_json::{json, Value};

use super::paired::{ALPHA, POWER};
use super::results::{resolution_json, Results, METRICS};
use super::spec::{Experiment, RESULTS_FORMAT};
use crate::error::Result;
use crate::fitness::Prepared;
use crate::metrics::FITNESS_FLOOR;
use crate::report::chart::{self, Axes, Series};
use crate::store::files::{write_csv, write_json};
use crate::store::safe::write_with;

/// How the summary's statistics were made (`results.json`'s
/// `statistics`).
pub fn statistics_json() -> Value {
    json!({
        "baseline": "the first activation",
        "test": "two-sided paired t-test on the seed-matched differences (activation - baseline)",
        "ci95": "Student-t interval of the mean difference",
        "family": "one per metric: the activations after the baseline (Holm step-down)",
        "alpha": ALPHA,
        "better": "null unless p_holm < alpha; true when the difference favours the activation (higher, or lower for ppl)",
        "fitness_floor": FITNESS_FLOOR,
        "failed_runs": "score fitness_floor in every fitness statistic; other metrics use the runs (and seed pairs) that succeeded",
        "mde_power": POWER,
    })
}

/// `results.json`, `results.csv` and `learning_curves.png`.
pub fn write_outputs(r: &Results, prep: &Prepared, out: &Path) -> Result<()> {
    let doc = json!({
        "format": RESULTS_FORMAT,
        "experiment": r.experiment.to_json(),
        "data": prep.describe(),
        "statistics": statistics_json(),
        "runs": r.runs,
        "summary": r.summary_json(),
        "resolution": resolution_json(&r.summary),
        "fitness_shares": r.fitness_shares.map(|[b, p, a]| json!({"bleu": b, "ppl": p, "acc": a})),
    });
    write_json(&out.join("results.json"), &doc)?;
    let header = [
        "activation",
        "seed",
        "status",
        "steps",
        "loss_first",
        "loss_last",
        "bleu",
        "chrf",
        "ppl",
        "acc",
        "fitness",
        "train_seconds",
        "eval_seconds",
    ];
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            let mut row = vec![
                cell(&run["activation"]),
                cell(&run["seed"]),
                cell(&run["status"]),
                cell(&run["steps"]),
                cell(&run["loss_first"]),
                cell(&run["loss_last"]),
            ];
            row.extend(METRICS.iter().map(|(k, _, _)| cell(&run["metrics"][k])));
            row.push(cell(&run["timing"]["train"]));
            row.push(cell(&run["timing"]["eval"]));
            row
        })
        .collect();
    write_csv(&out.join("results.csv"), &header, &rows)?;
    let axes = Axes {
        title: format!(
            "training loss, {} (mean and range over seeds)",
            r.experiment.recipe.task
        ),
        x: "step".into(),
        y: "loss".into(),
        log_y: true,
    };
    let series = curves(&r.experiment, &r.runs);
    write_with(&out.join("learning_curves.png"), |p| {
        chart::line_chart(&series, &axes, p)
    })
}

/// Per activation: the mean training loss per step over seeds (smoothed
/// over a window of 1/50 of the run), and the band from the lowest to the
/// highest seed.
pub fn curves(exp: &Experiment, runs: &[Value]) -> Vec<Series> {
    (0..exp.activations.len())
        .map(|a| {
            let per_seed: Vec<Vec<f64>> = runs
                .iter()
                .filter(|r| r["activation_index"] == json!(a) && r["status"] == "ok")
                .filter_map(|r| r["losses"].as_array())
                .map(|l| {
                    smooth(
                        &l.iter()
                            .map(|v| v.as_f64().unwrap_or(f64::NAN))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let len = per_seed.iter().map(Vec::len).min().unwrap_or(0);
            let mut s = Series {
                label: exp.activations[a].clone(),
                ..Default::default()
            };
            for t in 0..len {
                let col: Vec<f64> = per_seed.iter().map(|v| v[t]).collect();
                let mean = col.iter().sum::<f64>() / col.len() as f64;
                let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                s.points.push(((t + 1) as f64, mean));
                if col.len() > 1 {
                    s.band.push(((t + 1) as f64, lo, hi));
                }
            }
            s
        })
        .collect()
}

/// A trailing moving average over 1/50 of the series (at least 1 point).
fn smooth(xs: &[f64]) -> Vec<f64> {
    let w = (xs.len() / 50).max(1);
    let mut out = Vec::with_capacity(xs.len());
    let mut sum = 0.0;
    for i in 0..xs.len() {
        sum += xs[i];
        if i >= w {
            sum -= xs[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_a_trailing_mean() {
        let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let s = smooth(&xs);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[1], 0.5);
        assert_eq!(s[99], 98.5);
    }
}
