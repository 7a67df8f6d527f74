//! The summary of an experiment's runs: per activation, the statistics of
//! every metric over the seeds, its failures, and for every activation
//! after the first (the baseline) the paired differences from the baseline
//! (see [`super::paired`]).
//!
//! Failures count. A failed run (non-finite loss) scores
//! [`FITNESS_FLOOR`] in every fitness statistic: the mean and interval,
//! the paired differences, Welch's p. The other metrics are not defined
//! for a failed run: their statistics cover the successful runs, and their
//! paired differences the seeds where both activations succeeded (`n`
//! says how many).

use serde_json::{json, Value};

use super::paired::{against_baseline, Difference, ALPHA, POWER};
use super::spec::Experiment;
use crate::fitness::evaluate::finite;
use crate::metrics::{contributions, summarize, welch_p, Scores, Summary, Weights, FITNESS_FLOOR};

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
    /// One per activation, in the experiment's order (the first is the
    /// baseline).
    pub summary: Vec<ActivationSummary>,
    /// What the mean fitness of the successful runs is made of: the
    /// shares of BLEU, perplexity and accuracy (summing to 1); `None`
    /// without a successful run.
    pub fitness_shares: Option<[f64; 3]>,
    /// Set when a stop request interrupted the experiment (resumable).
    pub interrupted: bool,
}

impl Results {
    /// The `summary` of `results.json`.
    pub fn summary_json(&self) -> Vec<Value> {
        self.summary
            .iter()
            .map(ActivationSummary::to_json)
            .collect()
    }
}

/// One activation's result over the seeds.
#[derive(Clone, Debug)]
pub struct ActivationSummary {
    /// The activation spec as given.
    pub activation: String,
    /// Runs recorded, and how many of them failed.
    pub runs: usize,
    pub runs_failed: usize,
    /// Per metric of [`METRICS`], in that order: mean, SD and 95% interval
    /// over the successful runs; fitness over every run, a failure at
    /// [`FITNESS_FLOOR`].
    pub metrics: Vec<Summary>,
    pub loss_first: Summary,
    pub loss_last: Summary,
    /// Per metric: Welch's p against the baseline on the same values
    /// (secondary: it ignores the pairing); `None` for the baseline.
    pub welch_p: Option<Vec<Option<f64>>>,
    /// Per metric: the paired difference from the baseline, Holm-adjusted
    /// over the activations after the baseline; `None` for the baseline.
    pub vs_baseline: Option<Vec<Difference>>,
}

/// The index of `fitness` in [`METRICS`].
pub const FITNESS: usize = 4;

impl ActivationSummary {
    /// The resolution of the fitness comparison with the baseline: the
    /// minimum detectable difference (80% power, α = 0.05) and the same as
    /// a percentage of the baseline's mean fitness.
    pub fn fitness_mde(&self, baseline: &ActivationSummary) -> Option<(f64, f64)> {
        let d = self.vs_baseline.as_ref()?[FITNESS];
        let mde = d.mde();
        let base = baseline.metrics[FITNESS].mean;
        Some((mde, 100.0 * mde / base))
    }

    /// The summary row of `results.json` (stable keys: `activation`,
    /// `runs`, `runs_failed`, one `{n, mean, sd, ci95}` per metric,
    /// `loss_first`, `loss_last`, `welch_p` and `vs_baseline` (null for the
    /// baseline)).
    pub fn to_json(&self) -> Value {
        let mut row = json!({
            "activation": self.activation,
            "runs": self.runs,
            "runs_failed": self.runs_failed,
            "loss_first": summary_json(&self.loss_first),
            "loss_last": summary_json(&self.loss_last),
        });
        for ((key, _, _), s) in METRICS.iter().zip(&self.metrics) {
            row[*key] = summary_json(s);
        }
        row["welch_p"] = match &self.welch_p {
            None => Value::Null,
            Some(ps) => METRICS
                .iter()
                .zip(ps)
                .map(|((k, _, _), p)| (k.to_string(), p.map_or(Value::Null, finite)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        };
        row["vs_baseline"] = match &self.vs_baseline {
            None => Value::Null,
            Some(ds) => METRICS
                .iter()
                .zip(ds)
                .map(|((k, _, _), d)| (k.to_string(), d.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        };
        row
    }
}

/// The resolution of every comparison in `summary` (null for the
/// baseline): `{"fitness_mde", "fitness_mde_percent", "sd_diff", "n",
/// "alpha", "power"}`.
pub fn resolution_json(summary: &[ActivationSummary]) -> Vec<Value> {
    let Some(base) = summary.first() else {
        return Vec::new();
    };
    summary
        .iter()
        .map(|s| match (s.fitness_mde(base), &s.vs_baseline) {
            (Some((mde, pct)), Some(ds)) => json!({
                "activation": s.activation,
                "fitness_mde": finite(mde),
                "fitness_mde_percent": finite(pct),
                "sd_diff": finite(ds[FITNESS].test.sd_diff),
                "n": ds[FITNESS].test.n,
                "alpha": ALPHA,
                "power": POWER,
            }),
            _ => Value::Null,
        })
        .collect()
}

/// The shares of BLEU, perplexity and accuracy in the summed fitness of
/// the successful runs, with the recipe's `weights` and the tokenizer's
/// `vocab` (a run that generated no sentence has no BLEU term). `None`
/// without a successful run or with a zero total.
pub fn fitness_shares(runs: &[Value], weights: &Weights, vocab: usize) -> Option<[f64; 3]> {
    let mut sum = [0.0f64; 3];
    for r in runs.iter().filter(|r| r["status"] == "ok") {
        let m = &r["metrics"];
        let get = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        let scores = Scores {
            bleu: get("bleu"),
            chrf: get("chrf"),
            ppl: get("ppl"),
            acc: get("acc"),
        };
        let w = if scores.bleu.is_nan() {
            weights.without_bleu()?
        } else {
            *weights
        };
        for (s, c) in sum.iter_mut().zip(contributions(&scores, &w, vocab)) {
            *s += c;
        }
    }
    let total: f64 = sum.iter().sum();
    (total > 0.0 && total.is_finite()).then(|| sum.map(|s| s / total))
}

/// A run's fitness as the statistics count it: its measured fitness if it
/// succeeded, [`FITNESS_FLOOR`] if it failed.
pub fn scored_fitness(run: &Value) -> f64 {
    match run["metrics"]["fitness"].as_f64() {
        Some(f) if run["status"] == "ok" && f.is_finite() => f,
        _ => FITNESS_FLOOR,
    }
}

/// The value of `metric` for activation `a` at each seed of the experiment,
/// in the order of its seeds: `None` where no run is recorded, or where the
/// run failed or has no finite value (fitness: a failure scores the floor).
pub fn per_seed(exp: &Experiment, runs: &[Value], a: usize, metric: &str) -> Vec<Option<f64>> {
    exp.seeds
        .iter()
        .map(|&seed| {
            let run = runs
                .iter()
                .find(|r| r["activation_index"] == json!(a) && r["seed"] == json!(seed))?;
            if metric == "fitness" {
                return Some(scored_fitness(run));
            }
            run["metrics"][metric]
                .as_f64()
                .filter(|v| run["status"] == "ok" && v.is_finite())
        })
        .collect()
}

fn summary_json(s: &Summary) -> Value {
    json!({"n": s.n, "mean": finite(s.mean), "sd": finite(s.sd), "ci95": [finite(s.ci95.0), finite(s.ci95.1)]})
}

/// Per activation: statistics of every metric, failures, and (after the
/// first) Welch's p and the paired differences from the first, one Holm
/// family per metric over the activations after the first.
pub fn summarize_runs(exp: &Experiment, runs: &[Value]) -> Vec<ActivationSummary> {
    let n = exp.activations.len();
    // values[m][a]: the per-seed values of metric m for activation a.
    let values: Vec<Vec<Vec<Option<f64>>>> = METRICS
        .iter()
        .map(|(key, _, _)| (0..n).map(|a| per_seed(exp, runs, a, key)).collect())
        .collect();
    let diffs: Vec<Vec<Difference>> = METRICS
        .iter()
        .enumerate()
        .map(|(m, (_, _, higher))| against_baseline(&values[m][0], &values[m][1..], *higher))
        .collect();
    let flat = |v: &[Option<f64>]| -> Vec<f64> { v.iter().flatten().copied().collect() };
    (0..n)
        .map(|a| {
            let of_a: Vec<&Value> = runs
                .iter()
                .filter(|r| r["activation_index"] == json!(a))
                .collect();
            let losses = |key: &str| -> Summary {
                let xs: Vec<f64> = of_a
                    .iter()
                    .filter(|r| r["status"] == "ok")
                    .filter_map(|r| r[key].as_f64())
                    .collect();
                summarize(&xs)
            };
            ActivationSummary {
                activation: exp.activations[a].clone(),
                runs: of_a.len(),
                runs_failed: of_a.iter().filter(|r| r["status"] != "ok").count(),
                metrics: (0..METRICS.len())
                    .map(|m| summarize(&flat(&values[m][a])))
                    .collect(),
                loss_first: losses("loss_first"),
                loss_last: losses("loss_last"),
                welch_p: (a > 0).then(|| {
                    (0..METRICS.len())
                        .map(|m| welch_p(&flat(&values[m][0]), &flat(&values[m][a])))
                        .collect()
                }),
                vs_baseline: (a > 0).then(|| (0..METRICS.len()).map(|m| diffs[m][a - 1]).collect()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fitness::Recipe;

    fn exp() -> Experiment {
        Experiment {
            recipe: Recipe::for_task(crate::fitness::Task::Qa, false),
            activations: vec!["gelu".into(), "a".into(), "b".into()],
            seeds: vec![1, 2, 3],
            device: crate::device::Device::Cpu,
            checkpoint_every: 0,
            samples: 0,
            command: vec![],
            data: None,
        }
    }

    fn run(a: usize, seed: u64, fitness: Option<f64>) -> Value {
        json!({
            "activation_index": a, "seed": seed,
            "status": if fitness.is_some() { "ok" } else { "non-finite training loss (step 2)" },
            "metrics": fitness.map(|f| json!({"bleu": 1.0, "chrf": 2.0, "ppl": 10.0 - 10.0 * f, "acc": f, "fitness": f})),
        })
    }

    #[test]
    fn failures_score_the_floor_in_fitness_and_are_skipped_elsewhere() {
        let runs = vec![
            run(0, 1, Some(0.30)),
            run(0, 2, Some(0.32)),
            run(0, 3, Some(0.31)),
            run(1, 1, Some(0.40)),
            run(1, 2, None),
            run(1, 3, Some(0.41)),
            run(2, 1, None),
            run(2, 2, None),
            run(2, 3, None),
        ];
        let s = summarize_runs(&exp(), &runs);
        assert_eq!((s[1].runs, s[1].runs_failed), (3, 1));
        assert_eq!(s[2].runs_failed, 3);
        // Fitness: every run, the failure at 0.
        assert_eq!(s[1].metrics[FITNESS].n, 3);
        assert!((s[1].metrics[FITNESS].mean - 0.81 / 3.0).abs() < 1e-12);
        let d = s[1].vs_baseline.as_ref().unwrap()[FITNESS];
        assert_eq!(d.test.n, 3);
        // Accuracy: the two seeds where both succeeded.
        assert_eq!(s[1].metrics[3].n, 2);
        assert_eq!(s[1].vs_baseline.as_ref().unwrap()[3].test.n, 2);
        // Always failing: fitness 0 on every seed, far below the baseline.
        let d2 = s[2].vs_baseline.as_ref().unwrap()[FITNESS];
        assert_eq!(d2.test.n, 3);
        assert!((d2.test.mean_diff + 0.31).abs() < 1e-12);
        assert_eq!(s[2].vs_baseline.as_ref().unwrap()[3].test.n, 0);
        assert!(s[0].vs_baseline.is_none() && s[0].welch_p.is_none());
        let row = s[2].to_json();
        assert_eq!(row["runs_failed"], 3);
        assert!(row["vs_baseline"]["acc"]["p"].is_null());
        assert!(s[0].to_json()["vs_baseline"].is_null());
    }

    #[test]
    fn fitness_shares_are_the_measured_parts_of_the_fitness() {
        let w = Weights::default();
        // BLEU 1 (0.01·0.5), ppl 10 of 1000 (2/3·0.3), acc 0.5 (0.1).
        let r = json!({"status": "ok", "metrics": {"bleu": 1.0, "ppl": 10.0, "acc": 0.5}});
        let failed = json!({"status": "diverged", "metrics": {"fitness": 0.0}});
        let s = fitness_shares(&[r, failed], &w, 1000).unwrap();
        let parts = [0.005, 0.2, 0.1];
        for (got, p) in s.iter().zip(parts) {
            assert!((got - p / 0.305).abs() < 1e-12, "{s:?}");
        }
        // No sentence generated: no BLEU share.
        let r = json!({"status": "ok", "metrics": {"bleu": null, "ppl": 10.0, "acc": 0.5}});
        assert_eq!(fitness_shares(&[r], &w, 1000).unwrap()[0], 0.0);
        assert_eq!(fitness_shares(&[], &w, 1000), None);
    }

    #[test]
    fn per_seed_values_follow_the_seed_order() {
        let runs = vec![run(0, 3, Some(0.3)), run(0, 1, Some(0.1))];
        assert_eq!(
            per_seed(&exp(), &runs, 0, "fitness"),
            vec![Some(0.1), None, Some(0.3)]
        );
    }
}
