//! Several activations trained over several seeds by one recipe, side by
//! side, with statistics: what `actforge train` runs and what the search
//! uses to retrain its hall of fame against GELU.
//!
//! A run directory holds `config.json` (the command, recipe, activations,
//! seeds, versions, a description of the prepared data, and the hash of
//! all but the command and versions), `runs.jsonl` (one line per finished
//! run, flushed), a checkpoint folder per unfinished run, and at the end
//! `results.json`, `results.csv` and the learning-curve PNG. Resuming
//! checks the settings against their hash and the data against its
//! description, skips the finished runs and continues the unfinished one
//! from its checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use serde_json::{json, Value};

use super::prepare::Prepared;
use super::recipe::Recipe;
use super::run::{finite, run, CheckpointPlan, Outcome, RunOptions, Status, StepInfo};
use crate::error::{Error, Result};
use crate::metrics::{summarize, welch_p, Summary};
use crate::op::Activation;
use crate::report::chart::{self, Axes, Series};
use crate::store::checksum_hex;
use crate::store::files::{read_json_lines, write_csv, write_json, JsonLog};
use crate::store::safe::{real_dir, refuse_link, write_with};

/// The metrics of the summary, in table order: (key, label, higher is
/// better).
pub const METRICS: [(&str, &str, bool); 5] = [
    ("bleu", "BLEU", true),
    ("chrf", "chrF", true),
    ("ppl", "PPL", false),
    ("acc", "acc", true),
    ("fitness", "fitness", true),
];

/// The `results.json` format marker.
pub const RESULTS_FORMAT: &str = "actforge-train-1";

/// What to compare.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub recipe: Recipe,
    /// Activation specs as given (`gelu`, `fused:F`, `composed:F`, or a
    /// bare formula, taken as fused).
    pub activations: Vec<String>,
    pub seeds: Vec<u64>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Checkpoint every this many steps (0: only at the end of a run).
    pub checkpoint_every: u64,
    /// Sample answers kept per run (Q&A).
    pub samples: usize,
    /// The command line that started it (recorded).
    pub command: Vec<String>,
    /// What the prepared data was ([`Prepared::describe`]) when the run
    /// started; a resumed run must prepare the same (`None`: not checked).
    pub data: Option<Value>,
}

impl Experiment {
    /// Everything that decides the results (what the settings hash covers).
    fn settings_json(&self) -> Value {
        json!({
            "recipe": self.recipe.to_json(),
            "activations": self.activations,
            "seeds": self.seeds,
            "device": self.device,
            "checkpoint_every": self.checkpoint_every,
            "samples": self.samples,
            "data": self.data,
        })
    }

    /// The hash of [`Experiment::settings_json`] (16 hex digits).
    pub fn settings_hash(&self) -> String {
        checksum_hex(self.settings_json().to_string().as_bytes())
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"format": RESULTS_FORMAT});
        if let (Value::Object(out), Value::Object(settings)) = (&mut v, self.settings_json()) {
            out.extend(settings);
        }
        v["command"] = json!(self.command);
        v["versions"] = versions();
        v["settings_hash"] = json!(self.settings_hash());
        v
    }

    /// Read [`Experiment::to_json`] (a run's `config.json`, `path`): its
    /// settings must match their recorded hash (an edited activation or
    /// step count would mix runs of different settings in one summary),
    /// and they meet the flags' rules and limits.
    pub fn from_json(v: &Value, path: &Path) -> Result<Experiment> {
        let bad = |m: &str| Error::Input {
            path: path.display().to_string(),
            line: None,
            message: format!("not an actforge train run: {m}"),
        };
        if v["format"] != RESULTS_FORMAT {
            return Err(bad("unknown format"));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            v[k].as_array()
                .ok_or_else(|| bad(k))?
                .iter()
                .map(|s| s.as_str().map(String::from).ok_or_else(|| bad(k)))
                .collect()
        };
        let seeds = v["seeds"].as_array().ok_or_else(|| bad("seeds"))?;
        crate::limits::SEEDS.check_usize(
            &format!("`seeds` in {}: a list of", path.display()),
            seeds.len(),
        )?;
        let in_file = |e: Error| match e {
            Error::Usage(m) => Error::Usage(format!("{}: {m}", path.display())),
            other => other,
        };
        let exp = Experiment {
            recipe: Recipe::from_json(&v["recipe"]).map_err(in_file)?,
            activations: strings("activations")?,
            seeds: seeds
                .iter()
                .map(|s| s.as_u64().ok_or_else(|| bad("seeds")))
                .collect::<Result<_>>()?,
            device: v["device"].as_str().ok_or_else(|| bad("device"))?.into(),
            checkpoint_every: v["checkpoint_every"]
                .as_u64()
                .ok_or_else(|| bad("checkpoint_every"))?,
            samples: v["samples"].as_u64().ok_or_else(|| bad("samples"))? as usize,
            command: strings("command").unwrap_or_default(),
            data: v.get("data").filter(|d| !d.is_null()).cloned(),
        };
        let recorded = v["settings_hash"].as_str().ok_or_else(|| {
            bad("it records no `settings_hash`, so its settings cannot be verified")
        })?;
        if recorded != exp.settings_hash() {
            return Err(Error::Input {
                path: path.display().to_string(),
                line: None,
                message: format!(
                    "the settings do not match their recorded hash {recorded} (the file was edited): a resumed run must train with the settings it started with"
                ),
            });
        }
        for a in &exp.activations {
            parse_activation(a).map_err(in_file)?;
        }
        Ok(exp)
    }
}

/// The prepared data must be what the run started with (`config`, the
/// file that records it): a data file or tokenizer that changed under the
/// same path would mix runs on different data.
pub fn check_data(exp: &Experiment, prep: &Prepared, config: &Path) -> Result<()> {
    let Some(want) = &exp.data else {
        return Ok(());
    };
    let got = prep.describe();
    if &got == want {
        return Ok(());
    }
    let differs: Vec<String> = want
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {v} then, {} now",
                got.get(k.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect();
    Err(Error::Input {
        path: config.display().to_string(),
        line: None,
        message: format!(
            "the data prepared now is not the data the run started with ({}): restore the data (and tokenizer) it was made with, or start a new run",
            differs.join("; ")
        ),
    })
}

/// actforge's and candle's versions, recorded in every run directory.
pub fn versions() -> Value {
    json!({"actforge": env!("CARGO_PKG_VERSION"), "candle": "0.11.1"})
}

/// `gelu`, `fused:F`, `composed:F`; a bare formula is fused.
pub fn parse_activation(spec: &str) -> Result<Activation> {
    let s = spec.trim();
    if s == "gelu" || s.starts_with("fused:") || s.starts_with("composed:") {
        Activation::parse(s)
    } else {
        Activation::parse(&format!("fused:{s}"))
    }
}

/// `cpu`, `cuda` (GPU 0) or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return Err(Error::Usage(format!(
                    "device `{spec}`: expected cpu, cuda or cuda:N"
                )))
            }
        },
    };
    Device::new_cuda(ordinal).map_err(|e| Error::Missing {
        what: format!("CUDA device {ordinal}"),
        detail: e.to_string(),
        hint:
            "build with `--features cuda` on a machine with an NVIDIA driver, or use --device cpu"
                .into(),
    })
}

/// Hooks for progress display; every method has a quiet default.
pub trait Progress: Sync {
    fn run_started(
        &self,
        _index: usize,
        _total: usize,
        _activation: &str,
        _seed: u64,
        _steps: u64,
    ) {
    }
    fn step(&self, _info: &StepInfo) {}
    fn run_finished(&self, _outcome: &Outcome) {}
}

/// No progress display.
pub struct Quiet;
impl Progress for Quiet {}

/// The finished experiment.
pub struct Results {
    pub experiment: Experiment,
    pub runs: Vec<Value>,
    pub summary: Vec<Value>,
    /// Set when a stop request interrupted the experiment (resumable).
    pub interrupted: bool,
}

/// The checkpoint folder of run (`a`, `seed`).
fn run_dir(out: &Path, a: usize, seed: u64) -> PathBuf {
    out.join("checkpoints").join(format!("act{a}-seed{seed}"))
}

/// Run (or resume) the experiment in `out`, which holds `config.json`.
/// Finished runs found in `runs.jsonl` are not run again.
pub fn run_experiment(
    exp: &Experiment,
    prep: &Prepared,
    out: &Path,
    progress: &dyn Progress,
    stop: Option<&AtomicBool>,
) -> Result<Results> {
    let device = parse_device(&exp.device)?;
    let acts: Vec<Activation> = exp
        .activations
        .iter()
        .map(|s| parse_activation(s))
        .collect::<Result<_>>()?;
    check_data(exp, prep, &out.join("config.json"))?;
    let log_path = out.join("runs.jsonl");
    let mut done: Vec<Value> = read_json_lines(&log_path)?;
    let mut log = JsonLog::open(&log_path)?;
    real_dir(&out.join("checkpoints"))?;
    let total = acts.len() * exp.seeds.len();
    let mut index = 0;
    let mut interrupted = false;
    'outer: for &seed in &exp.seeds {
        for (a, act) in acts.iter().enumerate() {
            index += 1;
            if find_run(&done, a, seed).is_some() {
                continue;
            }
            // A checkpoint folder planted as a link would be read through.
            refuse_link(&run_dir(out, a, seed))?;
            let steps = super::run::total_steps(prep);
            progress.run_started(index, total, &exp.activations[a], seed, steps);
            let on_step = |i: &StepInfo| progress.step(i);
            let opts = RunOptions {
                checkpoint: Some(CheckpointPlan {
                    dir: run_dir(out, a, seed),
                    every: exp.checkpoint_every,
                }),
                on_step: Some(&on_step),
                stop,
                samples: exp.samples,
            };
            let outcome = run(prep, act, seed, &device, &opts)?;
            progress.run_finished(&outcome);
            if matches!(outcome.status, Status::Interrupted { .. }) {
                interrupted = true;
                break 'outer;
            }
            let mut line = outcome.to_json();
            line["activation"] = json!(exp.activations[a]);
            line["activation_index"] = json!(a);
            log.append(&line)?;
            done.push(line);
            let _ = std::fs::remove_dir_all(run_dir(out, a, seed));
        }
    }
    let runs: Vec<Value> = exp
        .seeds
        .iter()
        .flat_map(|&s| (0..acts.len()).map(move |a| (a, s)))
        .filter_map(|(a, s)| find_run(&done, a, s).cloned())
        .collect();
    let summary = summarize_runs(exp, &runs);
    let results = Results {
        experiment: exp.clone(),
        runs,
        summary,
        interrupted,
    };
    if !interrupted {
        // Each finished run removed its checkpoints; drop the empty folder.
        let _ = std::fs::remove_dir(out.join("checkpoints"));
        write_outputs(&results, prep, out)?;
    }
    Ok(results)
}

fn find_run(done: &[Value], a: usize, seed: u64) -> Option<&Value> {
    done.iter()
        .find(|r| r["activation_index"] == json!(a) && r["seed"] == json!(seed))
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

/// `results.json`, `results.csv` and `learning_curves.png`.
fn write_outputs(r: &Results, prep: &Prepared, out: &Path) -> Result<()> {
    let doc = json!({
        "format": RESULTS_FORMAT,
        "experiment": r.experiment.to_json(),
        "data": prep.describe(),
        "runs": r.runs,
        "summary": r.summary,
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
            super::Length::Steps(s) => format!("{s} steps"),
            super::Length::Epochs(e) => format!("{e} epochs"),
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

    fn exp() -> Experiment {
        Experiment {
            recipe: Recipe::for_task(super::super::Task::Qa, false),
            activations: vec!["gelu".into(), "silu(x)".into()],
            seeds: vec![1, 2, 3],
            device: "cpu".into(),
            checkpoint_every: 0,
            samples: 0,
            command: vec!["actforge".into(), "train".into()],
            data: None,
        }
    }

    #[test]
    fn an_edited_config_is_refused_and_an_intact_one_reads_back() {
        let path = Path::new("runs/t/config.json");
        let v = exp().to_json();
        let back = Experiment::from_json(&v, path).unwrap();
        assert_eq!(back.settings_hash(), exp().settings_hash());
        assert_eq!(back.activations, exp().activations);
        // Changing an activation or the steps is an edit.
        let mut edited = v.clone();
        edited["activations"][1] = json!("relu(x)");
        let e = Experiment::from_json(&edited, path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runs/t/config.json") && e.contains("recorded hash"),
            "{e}"
        );
        let mut edited = v.clone();
        edited["recipe"]["length"] = json!({"steps": 7});
        assert!(Experiment::from_json(&edited, path).is_err());
        // A config without a hash cannot be verified.
        let mut bare = v.clone();
        bare.as_object_mut().unwrap().remove("settings_hash");
        let e = Experiment::from_json(&bare, path).unwrap_err().to_string();
        assert!(e.contains("settings_hash"), "{e}");
        // A forged size is held to the flags' limit, whatever the hash.
        let mut forged = v.clone();
        forged["seeds"] = json!((0..1001).collect::<Vec<u64>>());
        let e = Experiment::from_json(&forged, path).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("limit of 1000"), "{e}");
        let mut forged = v;
        forged["recipe"]["batch_size"] = json!(1_000_000_000u64);
        let e = Experiment::from_json(&forged, path).unwrap_err();
        assert!(
            e.to_string()
                .contains("--batch-size 1000000000 is above the limit"),
            "{e}"
        );
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

    #[test]
    fn experiments_round_trip_through_json() {
        let e = exp();
        let back = Experiment::from_json(&e.to_json(), Path::new("config.json")).unwrap();
        assert_eq!(back.activations, e.activations);
        assert_eq!(back.seeds, e.seeds);
        assert_eq!(back.recipe, e.recipe);
        assert!(Experiment::from_json(&json!({"format": "x"}), Path::new("c.json")).is_err());
    }

    #[test]
    fn activation_specs_default_to_fused_and_devices_parse() {
        assert!(matches!(
            parse_activation("gelu").unwrap(),
            Activation::Gelu
        ));
        assert!(matches!(
            parse_activation("silu(x)").unwrap(),
            Activation::Fused(_)
        ));
        assert!(matches!(
            parse_activation("composed:silu(x)").unwrap(),
            Activation::Composed(_)
        ));
        assert!(parse_activation("silu(").is_err());
        assert!(matches!(parse_device("cpu").unwrap(), Device::Cpu));
        assert!(parse_device("gpu").is_err());
    }

    #[test]
    fn smoothing_is_a_trailing_mean() {
        let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let s = smooth(&xs);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[1], 0.5);
        assert_eq!(s[99], 98.5);
    }
}
