//! The experiment as text: the tables `actforge train` prints.

use serde_json::{json, Value};

use super::results::{Results, METRICS};

/// The seed's tables as text: per activation, mean ± half-width of the 95%
/// interval for every metric and Welch's p against the first activation;
/// per-epoch rows when recorded; sample answers when kept.
pub fn tables(r: &Results) -> String {
    let mut t = String::new();
    let exp = &r.experiment;
    t.push_str(&format!(
        "{} · {} · {} seeds · {}\n\n",
        exp.recipe.task,
        exp.recipe.preset,
        exp.seeds.len(),
        match exp.recipe.length {
            crate::fitness::Length::Steps(s) => format!("{s} steps"),
            crate::fitness::Length::Epochs(e) => format!("{e} epochs"),
        }
    ));
    let name_w = exp
        .activations
        .iter()
        .map(|a| a.chars().count().min(60))
        .max()
        .unwrap_or(10)
        .max(10);
    t.push_str(&format!("{:<name_w$}  ok", "activation"));
    for (_, label, _) in METRICS {
        t.push_str(&format!("  {label:>17}"));
    }
    t.push('\n');
    for s in &r.summary {
        let name: String = s["activation"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        let ok = s["runs"].as_u64().unwrap_or(0) - s["failed"].as_u64().unwrap_or(0);
        t.push_str(&format!("{name:<name_w$}  {ok:>2}"));
        for (key, _, _) in METRICS {
            t.push_str(&format!("  {:>17}", mean_ci(&s[key])));
        }
        t.push('\n');
    }
    if r.summary.len() > 1 {
        t.push_str(&format!(
            "\nWelch's t-test p-value against `{}`:\n",
            exp.activations[0]
        ));
        t.push_str(&format!("{:<name_w$}    ", "activation"));
        for (_, label, _) in METRICS {
            t.push_str(&format!("  {label:>8}"));
        }
        t.push('\n');
        for s in &r.summary[1..] {
            let name: String = s["activation"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            t.push_str(&format!("{name:<name_w$}    "));
            for (key, _, _) in METRICS {
                let p = s["welch_p"][key]
                    .as_f64()
                    .map_or("—".into(), |p| format!("{p:.3}"));
                t.push_str(&format!("  {p:>8}"));
            }
            t.push('\n');
        }
    }
    t.push_str(&epoch_table(r));
    t.push_str(&sample_table(r));
    let failed: Vec<&Value> = r.runs.iter().filter(|x| x["status"] != "ok").collect();
    if !failed.is_empty() {
        t.push_str("\nfailed runs:\n");
        for f in failed {
            t.push_str(&format!(
                "  {} seed {}: {}\n",
                f["activation"].as_str().unwrap_or(""),
                f["seed"],
                f["status"].as_str().unwrap_or("")
            ));
        }
    }
    t
}

/// `12.34 ± 0.56` (or the mean alone with one seed).
fn mean_ci(s: &Value) -> String {
    let mean = s["mean"].as_f64();
    let (lo, hi) = (s["ci95"][0].as_f64(), s["ci95"][1].as_f64());
    match (mean, lo, hi) {
        (Some(m), Some(l), Some(h)) => format!("{} ± {}", fmt3(m), fmt3((h - l) / 2.0)),
        (Some(m), _, _) => fmt3(m),
        _ => "—".into(),
    }
}

/// Three significant decimals, scientific for very large or small values.
fn fmt3(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Mean per epoch over seeds, per activation (the T5 experiment's table).
fn epoch_table(r: &Results) -> String {
    let exp = &r.experiment;
    if !r
        .runs
        .iter()
        .any(|x| x["epochs"].as_array().is_some_and(|e| !e.is_empty()))
    {
        return String::new();
    }
    let mut t = String::from("\nper epoch (mean over seeds):\nactivation  epoch  train loss  valid loss     BLEU      PPL\n");
    for (a, name) in exp.activations.iter().enumerate() {
        let rows: Vec<&Vec<Value>> = r
            .runs
            .iter()
            .filter(|x| x["activation_index"] == json!(a) && x["status"] == "ok")
            .filter_map(|x| x["epochs"].as_array())
            .collect();
        let n = rows.iter().map(|e| e.len()).min().unwrap_or(0);
        for e in 0..n {
            let mean = |k: &str| {
                let xs: Vec<f64> = rows.iter().filter_map(|r| r[e][k].as_f64()).collect();
                if xs.is_empty() {
                    f64::NAN
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                }
            };
            let short: String = name.chars().take(10).collect();
            t.push_str(&format!(
                "{short:<10}  {:>5}  {:>10.4}  {:>10.4}  {:>7.2}  {:>7.2}\n",
                rows[0][e]["epoch"],
                mean("train_loss"),
                mean("valid_loss"),
                mean("bleu"),
                mean("ppl")
            ));
        }
    }
    t
}

/// The kept sample answers of each activation's first seed.
fn sample_table(r: &Results) -> String {
    let mut t = String::new();
    let (heading, input) = if r.experiment.recipe.task == crate::fitness::Task::Qa {
        ("sample answers", "Q:")
    } else {
        ("sample translations", "source:")
    };
    for (a, name) in r.experiment.activations.iter().enumerate() {
        let Some(run) = r.runs.iter().find(|x| {
            x["activation_index"] == json!(a)
                && x["samples"].as_array().is_some_and(|s| !s.is_empty())
        }) else {
            continue;
        };
        if t.is_empty() {
            t.push_str(&format!("\n{heading} (first seed):\n"));
        }
        t.push_str(&format!("[{name}]\n"));
        for s in run["samples"].as_array().into_iter().flatten() {
            t.push_str(&format!(
                "  {input} {}\n     reference: {}\n     generated: {}\n",
                s["source"].as_str().unwrap_or(""),
                s["reference"].as_str().unwrap_or(""),
                s["output"].as_str().unwrap_or("")
            ));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::results::summarize_runs;
    use crate::experiment::spec::Experiment;
    use crate::fitness::Recipe;

    fn exp() -> Experiment {
        Experiment {
            recipe: Recipe::for_task(crate::fitness::Task::Qa, false),
            activations: vec!["gelu".into(), "silu(x)".into()],
            seeds: vec![1, 2, 3],
            device: "cpu".into(),
            checkpoint_every: 0,
            samples: 0,
            command: vec!["actforge".into(), "train".into()],
        }
    }

    fn run_line(a: usize, seed: u64, fitness: f64, ok: bool) -> Value {
        let name = ["gelu", "silu(x)"][a];
        json!({
            "activation": name, "activation_index": a, "seed": seed,
            "status": if ok { "ok" } else { "non-finite training loss (NaN) (step 3)" },
            "loss_first": 5.0, "loss_last": 2.0, "steps": 10,
            "metrics": {"bleu": fitness * 100.0, "chrf": 30.0, "ppl": 10.0, "acc": 0.4, "fitness": fitness},
            "losses": [5.0, 4.0, 3.0, 2.0], "epochs": [], "samples": [],
        })
    }

    #[test]
    fn summary_has_the_stable_keys_and_welch_against_the_first() {
        let e = exp();
        let runs = vec![
            run_line(0, 1, 0.30, true),
            run_line(0, 2, 0.32, true),
            run_line(0, 3, 0.31, true),
            run_line(1, 1, 0.40, true),
            run_line(1, 2, 0.42, true),
            run_line(1, 3, 0.0, false),
        ];
        let s = summarize_runs(&e, &runs);
        assert_eq!(s.len(), 2);
        assert!(s[0]["welch_p"].is_null());
        assert_eq!(s[1]["failed"], 1);
        assert_eq!(s[1]["fitness"]["n"], 2);
        let p = s[1]["welch_p"]["fitness"].as_f64().unwrap();
        assert!(p > 0.0 && p < 0.05, "{p}");
        let m = s[0]["fitness"]["mean"].as_f64().unwrap();
        assert!((m - 0.31).abs() < 1e-12);
        let ci = &s[0]["fitness"]["ci95"];
        assert!(ci[0].as_f64().unwrap() < m && ci[1].as_f64().unwrap() > m);
        let text = tables(&Results {
            experiment: e,
            runs,
            summary: s,
            interrupted: false,
        });
        assert!(
            text.contains("Welch") && text.contains("failed runs"),
            "{text}"
        );
    }
}
