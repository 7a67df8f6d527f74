//! The summary of an experiment's runs: per activation, the statistics of
//! every metric over the seeds.

use serde_json::{json, Value};

use super::spec::Experiment;
use crate::fitness::run::finite;
use crate::metrics::{summarize, welch_p, Summary};

/// The metrics of the summary, in table order: (key, label, higher is
/// better).
pub const METRICS: [(&str, &str, bool); 5] = [
    ("bleu", "BLEU", true),
    ("chrf", "chrF", true),
    ("ppl", "PPL", false),
    ("acc", "acc", true),
    ("fitness", "fitness", true),
];

/// The finished experiment.
pub struct Results {
    pub experiment: Experiment,
    pub runs: Vec<Value>,
    pub summary: Vec<Value>,
    /// Set when a stop request interrupted the experiment (resumable).
    pub interrupted: bool,
}

/// The values of `metric` over the successful runs of activation `a`.
fn values(runs: &[Value], a: usize, metric: &str) -> Vec<f64> {
    runs.iter()
        .filter(|r| r["activation_index"] == json!(a) && r["status"] == "ok")
        .filter_map(|r| r["metrics"][metric].as_f64())
        .collect()
}

fn summary_json(s: &Summary) -> Value {
    json!({"n": s.n, "mean": finite(s.mean), "sd": finite(s.sd), "ci95": [finite(s.ci95.0), finite(s.ci95.1)]})
}

/// The `summary` of `results.json`: per activation, mean and 95% interval
/// of every metric, and Welch's p against the first activation.
pub fn summarize_runs(exp: &Experiment, runs: &[Value]) -> Vec<Value> {
    (0..exp.activations.len())
        .map(|a| {
            let mut entry = json!({
                "activation": exp.activations[a],
                "runs": runs.iter().filter(|r| r["activation_index"] == json!(a)).count(),
                "failed": runs.iter().filter(|r| r["activation_index"] == json!(a) && r["status"] != "ok").count(),
            });
            let mut welch = serde_json::Map::new();
            for (key, _, _) in METRICS {
                let xs = values(runs, a, key);
                entry[key] = summary_json(&summarize(&xs));
                let p = if a == 0 {
                    None
                } else {
                    welch_p(&values(runs, 0, key), &xs)
                };
                welch.insert(key.into(), p.map_or(Value::Null, finite));
            }
            for key in ["loss_first", "loss_last"] {
                let xs: Vec<f64> = runs
                    .iter()
                    .filter(|r| r["activation_index"] == json!(a) && r["status"] == "ok")
                    .filter_map(|r| r[key].as_f64())
                    .collect();
                entry[key] = summary_json(&summarize(&xs));
            }
            entry["welch_p"] = if a == 0 { Value::Null } else { Value::Object(welch) };
            entry
        })
        .collect()
}
