//! The experiment as text: the tables `actforge train` prints (the
//! command line's trade; the experiment hands over typed results). Names are
//! printed whole: when one is too long for a column, every row is
//! numbered and a legend gives the names.

use serde_json::{json, Value};

use crate::experiment::paired::{Difference, ALPHA, POWER};
use crate::experiment::results::{ActivationSummary, Results, FITNESS, METRICS};
use crate::experiment::spec::label;
use crate::metrics::FITNESS_FLOOR;

/// The longest name printed in a column; with a longer one, rows are
/// numbered (`#0`, `#1`, …) and a legend lists the names.
const NAME_COLUMN: usize = 40;

/// The row names of the tables, and the legend when they are numbers.
struct Names {
    rows: Vec<String>,
    legend: String,
    width: usize,
}

fn names(r: &Results) -> Names {
    let labels: Vec<String> = r.experiment.activations.iter().map(|a| label(a)).collect();
    let (rows, legend) = if labels.iter().all(|l| l.chars().count() <= NAME_COLUMN) {
        (labels, String::new())
    } else {
        let mut legend = String::from("activations:\n");
        for (i, l) in labels.iter().enumerate() {
            let base = if i == 0 { "  (baseline)" } else { "" };
            legend.push_str(&format!("  #{i}  {l}{base}\n"));
        }
        legend.push('\n');
        ((0..labels.len()).map(|i| format!("#{i}")).collect(), legend)
    };
    let width = rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0)
        .max("activation".len());
    Names {
        rows,
        legend,
        width,
    }
}

/// The seed's tables as text: per activation, runs and failures and the
/// mean ± half-width of the 95% interval of every metric; the paired
/// differences from the first activation (the baseline) with their
/// intervals, p, Holm p, Welch's p and verdicts, and the resolution of
/// the fitness comparison; per-epoch rows when recorded; sample answers
/// when kept; the failed runs.
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
    let names = names(r);
    let w = names.width;
    t.push_str(&names.legend);
    t.push_str(&format!("{:<w$}  runs  failed", "activation"));
    for (_, label, _) in METRICS {
        t.push_str(&format!("  {label:>17}"));
    }
    t.push('\n');
    for (s, name) in r.summary.iter().zip(&names.rows) {
        t.push_str(&format!("{name:<w$}  {:>4}  {:>6}", s.runs, s.runs_failed));
        for m in &s.metrics {
            t.push_str(&format!("  {:>17}", mean_ci(m)));
        }
        t.push('\n');
    }
    t.push_str(&format!(
        "(mean ± half-width of the 95% Student-t interval over seeds; fitness counts a failed run as {FITNESS_FLOOR})\n"
    ));
    if let Some([b, p, a]) = r.fitness_shares {
        let w = exp.recipe.weights.shares();
        t.push_str(&format!(
            "fitness = {:.0}% BLEU + {:.0}% PPL term + {:.0}% acc by weight; measured shares of the successful runs' fitness: BLEU {:.1}%, PPL {:.1}%, acc {:.1}%\n",
            100.0 * w[0],
            100.0 * w[1],
            100.0 * w[2],
            100.0 * b,
            100.0 * p,
            100.0 * a
        ));
    }
    if r.summary.len() > 1 {
        t.push_str(&paired_table(r, &names));
    }
    t.push_str(&epoch_table(r, &names));
    t.push_str(&sample_table(r));
    let failed: Vec<&Value> = r.runs.iter().filter(|x| x["status"] != "ok").collect();
    if !failed.is_empty() {
        t.push_str("\nfailed runs:\n");
        for f in failed {
            let a = f["activation_index"].as_u64().unwrap_or(0) as usize;
            t.push_str(&format!(
                "  {} seed {}: {}\n",
                names.rows.get(a).map_or("?", String::as_str),
                f["seed"],
                f["status"].as_str().unwrap_or("")
            ));
        }
    }
    t
}

/// The paired differences from the baseline, one block per activation.
fn paired_table(r: &Results, names: &Names) -> String {
    let w = names.width;
    let family = r.summary.len() - 1;
    let mut t = format!(
        "\npaired differences from {} (activation − baseline, seed by seed):\n\
         mean difference [95% Student-t interval], two-sided paired t-test p, Holm p over the\n\
         {family} activation(s) compared (one family per metric), Welch's p (unpaired, for reference);\n\
         better/worse: Holm p < {ALPHA} in the metric's good direction (PPL: lower)\n",
        label(&r.experiment.activations[0])
    );
    t.push_str(&format!(
        "{:<w$}  {:<7}  {:>3}  {:<36}  {:>8}  {:>8}  {:>8}  verdict\n",
        "activation", "metric", "n", "difference [95% interval]", "p", "Holm p", "Welch p"
    ));
    let base = &r.summary[0];
    for (s, name) in r.summary.iter().zip(&names.rows).skip(1) {
        let (Some(ds), Some(welch)) = (&s.vs_baseline, &s.welch_p) else {
            continue;
        };
        for (m, (_, label, _)) in METRICS.iter().enumerate() {
            let shown = if m == 0 { name.as_str() } else { "" };
            let d = &ds[m];
            t.push_str(&format!(
                "{shown:<w$}  {label:<7}  {:>3}  {:<36}  {:>8}  {:>8}  {:>8}  {}\n",
                d.test.n,
                diff_ci(d),
                fmt_p(d.test.p),
                fmt_p(d.p_holm),
                fmt_p(welch[m]),
                d.verdict.word()
            ));
        }
        t.push_str(&resolution_line(s, base, w));
    }
    t
}

/// What the fitness comparison can resolve.
fn resolution_line(s: &ActivationSummary, base: &ActivationSummary, w: usize) -> String {
    let Some((mde, pct)) = s.fitness_mde(base) else {
        return String::new();
    };
    let n = s.vs_baseline.as_ref().map_or(0, |d| d[FITNESS].test.n);
    if !mde.is_finite() {
        return format!(
            "{:w$}  resolution: {n} seed pair(s) cannot resolve a fitness difference\n",
            ""
        );
    }
    format!(
        "{:w$}  resolution: a true fitness difference of ±{} ({:.2}% of the baseline's {}) is detected\n\
         {:w$}  with {:.0}% power at α = {ALPHA} ({n} seed pairs)\n",
        "",
        sig(mde, mde).trim_start_matches('+'),
        pct,
        fmt3(base.metrics[FITNESS].mean),
        "",
        POWER * 100.0
    )
}

/// `+0.00116 [+0.00060, +0.00172]`, to three significant digits of the
/// interval's half-width.
fn diff_ci(d: &Difference) -> String {
    let t = &d.test;
    if t.n == 0 {
        return "—".into();
    }
    let half = (t.ci95.1 - t.ci95.0) / 2.0;
    let scale = if half.is_finite() && half > 0.0 {
        half
    } else {
        t.mean_diff.abs()
    };
    if t.ci95.0.is_finite() && t.ci95.1.is_finite() {
        format!(
            "{} [{}, {}]",
            sig(t.mean_diff, scale),
            sig(t.ci95.0, scale),
            sig(t.ci95.1, scale)
        )
    } else {
        sig(t.mean_diff, scale)
    }
}

/// `v` signed, with the decimals that give `scale` three significant
/// digits (scientific outside 1e-6..1e6).
fn sig(v: f64, scale: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if scale == 0.0 || !scale.is_finite() {
        return format!("{v:+}");
    }
    if !(1e-6..1e6).contains(&scale) {
        return format!("{v:+.2e}");
    }
    let decimals = (2 - scale.log10().floor() as i32).clamp(0, 8) as usize;
    format!("{v:+.decimals$}")
}

/// A p-value: three decimals, scientific below 0.001, `—` when undefined.
fn fmt_p(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-3 => format!("{p:.1e}"),
        Some(p) => format!("{p:.3}"),
        None => "—".into(),
    }
}

/// `12.34 ± 0.56` (or the mean alone with one seed).
fn mean_ci(s: &crate::metrics::Summary) -> String {
    match (s.mean, s.half_width()) {
        (m, h) if m.is_finite() && h.is_finite() => format!("{} ± {}", fmt3(m), fmt3(h)),
        (m, _) if m.is_finite() => fmt3(m),
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
fn epoch_table(r: &Results, names: &Names) -> String {
    let exp = &r.experiment;
    if !r
        .runs
        .iter()
        .any(|x| x["epochs"].as_array().is_some_and(|e| !e.is_empty()))
    {
        return String::new();
    }
    let w = names.width;
    let mut t = format!(
        "\nper epoch (mean over seeds):\n{:<w$}  epoch  train loss  valid loss     BLEU      PPL\n",
        "activation"
    );
    for (a, name) in names.rows.iter().enumerate().take(exp.activations.len()) {
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
            t.push_str(&format!(
                "{name:<w$}  {:>5}  {:>10.4}  {:>10.4}  {:>7.2}  {:>7.2}\n",
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
        t.push_str(&format!("[{}]\n", label(name)));
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
            device: crate::device::Device::Cpu,
            checkpoint_every: 0,
            samples: 0,
            command: vec!["actforge".into(), "train".into()],
            data: None,
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

    fn results(e: Experiment, runs: Vec<Value>) -> Results {
        let summary = summarize_runs(&e, &runs);
        Results {
            experiment: e,
            runs,
            summary,
            fitness_shares: Some([0.01, 0.72, 0.27]),
            interrupted: false,
        }
    }

    #[test]
    fn tables_show_paired_verdicts_failures_and_the_baseline_by_what_trains() {
        let runs = vec![
            run_line(0, 1, 0.30, true),
            run_line(0, 2, 0.32, true),
            run_line(0, 3, 0.31, true),
            run_line(1, 1, 0.40, true),
            run_line(1, 2, 0.42, true),
            run_line(1, 3, 0.0, false),
        ];
        let text = tables(&results(exp(), runs));
        for want in [
            "gelu (candle, tanh)",
            "paired differences from gelu (candle, tanh)",
            "Holm p",
            "Welch",
            "failed runs:\n  silu(x) seed 3",
            "resolution:",
            "measured shares of the successful runs' fitness: BLEU 1.0%, PPL 72.0%, acc 27.0%",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // silu(x): runs 3, failed 1.
        assert!(text.contains("silu(x)                 3       1"), "{text}");
    }

    #[test]
    fn long_names_are_numbered_with_a_legend_never_cut() {
        let long = "safe_add(gelu_like(x), safe_mul(sigmoid_like(x), softsign(safe_sin(x))))";
        let mut e = exp();
        // Cut at 60 characters, the two formulas would print alike.
        e.activations = vec![
            "gelu".into(),
            long.replace("safe_sin", "safe_cos"),
            long.to_string(),
        ];
        let runs: Vec<Value> = (0..3)
            .flat_map(|a| (1..=3).map(move |s| (a, s)))
            .map(|(a, s)| {
                let mut r = run_line(0, s, 0.3 + 0.01 * s as f64 + 0.001 * a as f64, true);
                r["activation_index"] = json!(a);
                r
            })
            .collect();
        let text = tables(&results(e.clone(), runs));
        assert!(
            text.contains(&format!("#1  {}", e.activations[1])),
            "{text}"
        );
        assert!(text.contains(&format!("#2  {long}")), "{text}");
        assert!(
            text.contains("#0  gelu (candle, tanh)  (baseline)"),
            "{text}"
        );
        assert!(text.lines().any(|l| l.starts_with("#2 ")), "{text}");
    }
}
