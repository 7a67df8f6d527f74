//! The report page of a `train` run directory (and of a search's final
//! retrain, which is one): the comparison table with the verdict against
//! the baseline, learning curves with bands, per-epoch rows, sample
//! generations side by side, every run, settings and versions.
//!
//! Reads only the directory's files (`config.json`, `results.json`, or
//! `runs.jsonl` while the run is unfinished), so any run directory, old
//! ones included, gets a page; turns them into plain data for
//! [`crate::report::html`]. Also holds the readers both run pages share
//! (the search page uses them). Imports nothing else of `fitness`, so it
//! can move with the comparison code.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::metrics::summarize;
use crate::report::chart::{line_svg, Axes, Series};
use crate::report::html::{self, Block, Cell, Figure, Page, Section, Table, Tone};
use crate::store::files::read_json_lines;
use crate::store::safe::read_bounded;

/// The metrics of a training comparison: (key, label, higher is better).
pub const METRICS: [(&str, &str, bool); 5] = [
    ("fitness", "fitness", true),
    ("ppl", "PPL", false),
    ("acc", "acc", true),
    ("bleu", "BLEU", true),
    ("chrf", "chrF", true),
];

/// Significant digits of the numbers on the pages.
pub const DIGITS: usize = 4;

/// `config.json`'s `format` of a train run starts with this.
const TRAIN_FORMAT_PREFIX: &str = "actforge-train";

/// Whether `config` (a run's `config.json`) is a train run's.
pub fn is_train_config(config: &Value) -> bool {
    config["format"]
        .as_str()
        .is_some_and(|f| f.starts_with(TRAIN_FORMAT_PREFIX))
}

/// Write `dir/report.html` for the train run in `dir`; returns its path.
pub fn write(dir: &Path) -> Result<std::path::PathBuf> {
    let page = build(dir)?;
    let path = dir.join(html::FILE_NAME);
    html::write(&path, &page)?;
    Ok(path)
}

/// The page of the train run in `dir`.
pub fn build(dir: &Path) -> Result<Page> {
    let config = read_json(&dir.join("config.json"))?.ok_or_else(|| not_a_run(dir))?;
    if !is_train_config(&config) {
        return Err(not_a_run(dir));
    }
    let results = read_json(&dir.join("results.json"))?;
    let (runs, summary) = match &results {
        Some(r) => (array(&r["runs"]), array(&r["summary"])),
        None => {
            let runs = read_json_lines(&dir.join("runs.jsonl"))?;
            let summary = partial_summary(&config, &runs);
            (runs, summary)
        }
    };
    let acts = strings(&config["activations"]);
    let total = acts.len() * array(&config["seeds"]).len();
    let status = if results.is_some() {
        "finished".to_string()
    } else {
        format!(
            "unfinished: {} of {total} runs done (continue with `actforge train --resume DIR`)",
            runs.len()
        )
    };
    let recipe = &config["recipe"];
    let mut sections = vec![comparison(&summary, &runs, results.is_some())];
    sections.push(curves(&acts, &runs));
    sections.extend(epochs(&acts, &runs));
    sections.extend(samples(&acts, &runs));
    sections.push(run_table(&runs));
    sections.push(settings(dir, &config, results.as_ref()));
    Ok(Page {
        title: format!(
            "actforge train · {} · {}",
            text(&recipe["task"]),
            dir_name(dir)
        ),
        subtitle: format!(
            "{} · {} · {} activations × {} seeds · {} · {status}",
            text(&recipe["preset"]),
            length_text(&recipe["length"]),
            acts.len(),
            array(&config["seeds"]).len(),
            text(&config["device"]),
        ),
        sections,
        footer: footer(),
    })
}

fn not_a_run(dir: &Path) -> Error {
    Error::Usage(format!(
        "{} is not an actforge train run directory (its config.json is missing or not a train run's)",
        dir.display()
    ))
}

// ----- readers shared by the run pages --------------------------------------

/// A JSON file (a regular file, not a link, within the data-file limit);
/// `None` when it does not exist. A file that is not JSON is an error
/// naming the file and line.
pub fn read_json(path: &Path) -> Result<Option<Value>> {
    let Some(bytes) = read_bounded(path, crate::limits::DATA_FILE_BYTES.max)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Input {
            path: path.display().to_string(),
            line: Some(e.line()),
            message: format!("not JSON: {e}"),
        })
}

/// The elements of a JSON array (none for anything else).
pub fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A number, NaN when absent or not a number.
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// A whole number as a count, another number as is, else empty.
pub fn count(v: &Value) -> Cell {
    match (v.as_u64(), v.as_f64()) {
        (Some(n), _) => Cell::int(n),
        (None, Some(x)) => Cell::num(x, DIGITS),
        _ => Cell::Empty,
    }
}

/// A string as is, other values as JSON text, null as empty.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    array(v).iter().map(text).collect()
}

/// The last component of `dir`.
pub fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The page's small print.
pub fn footer() -> String {
    format!(
        "written by actforge {} from the files of this run directory; `actforge report DIR` rebuilds it",
        env!("CARGO_PKG_VERSION")
    )
}

/// A command line as a shell would take it back (words quoted as needed).
pub fn command_line(words: &Value) -> String {
    strings(words)
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `{"steps": 300}` → `300 steps`.
fn length_text(v: &Value) -> String {
    match v.as_object().and_then(|o| o.iter().next()) {
        Some((k, n)) => format!("{} {k}", text(n)),
        None => text(v),
    }
}

/// An object's leaves as (dotted key, value) rows.
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Cell)>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object()) => {
            let items: Vec<String> = a.iter().map(text).collect();
            out.push((prefix.to_string(), Cell::code(items.join(", "))));
        }
        Value::Number(n) => out.push((prefix.to_string(), Cell::code(n.to_string()))),
        v => out.push((prefix.to_string(), Cell::code(text(v)))),
    }
}

/// The run directory's files (and those one folder down), with sizes and
/// links.
pub fn files_table(dir: &Path) -> Table {
    let mut rows = Vec::new();
    let mut names = listing(dir);
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if path.is_dir() {
            let mut inner = listing(&path);
            inner.sort();
            for i in inner {
                let rel = format!("{name}/{i}");
                rows.push(file_row(&dir.join(&rel), rel));
            }
        } else {
            rows.push(file_row(&path, name));
        }
    }
    Table {
        header: vec!["file".into(), "bytes".into()],
        rows,
        sortable: true,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn file_row(path: &Path, rel: String) -> Vec<Cell> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let size = if path.is_dir() {
        Cell::text("folder")
    } else {
        Cell::int(size)
    };
    vec![
        Cell::Link {
            href: rel.clone(),
            text: rel,
        },
        size,
    ]
}

/// `mean [lo, hi]` of a summary object `{mean, ci95: [lo, hi]}`; the mean
/// alone without an interval.
pub fn mean_ci(s: &Value) -> Cell {
    let (m, lo, hi) = (num(&s["mean"]), num(&s["ci95"][0]), num(&s["ci95"][1]));
    if !m.is_finite() {
        return Cell::num(m, DIGITS);
    }
    let sig = |v: f64| crate::report::number::significant(v, DIGITS);
    let text = if lo.is_finite() && hi.is_finite() {
        format!("{} [{}, {}]", sig(m), sig(lo), sig(hi))
    } else {
        sig(m)
    };
    Cell::num_text(m, text)
}

/// A number with its sign (`+0.0012`).
fn signed(v: f64) -> String {
    let s = crate::report::number::significant(v, 3);
    if v > 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

// ----- the verdict -----------------------------------------------------------

/// One metric of one activation against the baseline, as a run file
/// records it: the paired contract (`vs_baseline`) where it exists, else
/// what older files have (means and Welch's p).
#[derive(Clone, Debug, PartialEq)]
pub enum Versus {
    Paired {
        mean_diff: f64,
        ci95: (f64, f64),
        p: f64,
        p_holm: f64,
        n: u64,
        better: Option<bool>,
    },
    Unpaired {
        diff_of_means: f64,
        welch_p: Option<f64>,
        higher_is_better: bool,
    },
}

impl Versus {
    /// `row`'s `metric` against `base` (a summary row each). `welch_p` is
    /// an object per metric in `results.json`, a number (fitness) in a
    /// search's `final.json`.
    pub fn of(row: &Value, base: &Value, metric: &str, higher_is_better: bool) -> Option<Versus> {
        let v = &row["vs_baseline"][metric];
        if v.is_object() {
            return Some(Versus::Paired {
                mean_diff: num(&v["mean_diff"]),
                ci95: (num(&v["ci95"][0]), num(&v["ci95"][1])),
                p: num(&v["p"]),
                p_holm: num(&v["p_holm"]),
                n: v["n"].as_u64().unwrap_or(0),
                better: v["better"].as_bool(),
            });
        }
        let diff = num(&row[metric]["mean"]) - num(&base[metric]["mean"]);
        if !diff.is_finite() {
            return None;
        }
        let welch_p = match &row["welch_p"] {
            Value::Object(o) => o.get(metric).and_then(Value::as_f64),
            Value::Number(n) if metric == "fitness" => n.as_f64(),
            _ => None,
        };
        Some(Versus::Unpaired {
            diff_of_means: diff,
            welch_p,
            higher_is_better,
        })
    }

    /// better / worse / no difference, as a tag.
    pub fn tag(&self) -> Cell {
        match self {
            Versus::Paired { better, .. } => match better {
                Some(true) => Cell::Tag(Tone::Good, "better".into()),
                Some(false) => Cell::Tag(Tone::Bad, "worse".into()),
                None => Cell::Tag(Tone::Neutral, "no difference".into()),
            },
            Versus::Unpaired {
                diff_of_means,
                welch_p,
                higher_is_better,
            } => match welch_p {
                Some(p) if *p < 0.05 => {
                    let better = (*diff_of_means > 0.0) == *higher_is_better;
                    let word = if better { "better?" } else { "worse?" };
                    Cell::Tag(Tone::Caution, format!("{word} (unpaired, uncorrected)"))
                }
                Some(_) => Cell::Tag(Tone::Neutral, "no difference shown".into()),
                None => Cell::Tag(Tone::Neutral, "not tested".into()),
            },
        }
    }

    /// The table cells: difference [interval], p, Holm p, pairs.
    pub fn cells(&self) -> [Cell; 4] {
        match self {
            Versus::Paired {
                mean_diff,
                ci95,
                p,
                p_holm,
                n,
                ..
            } => [
                Cell::num_text(
                    *mean_diff,
                    format!(
                        "{} [{}, {}]",
                        signed(*mean_diff),
                        signed(ci95.0),
                        signed(ci95.1)
                    ),
                ),
                Cell::num(*p, 3),
                Cell::num(*p_holm, 3),
                Cell::int(*n),
            ],
            Versus::Unpaired {
                diff_of_means,
                welch_p,
                ..
            } => [
                Cell::num_text(*diff_of_means, signed(*diff_of_means)),
                Cell::num(welch_p.unwrap_or(f64::NAN), 3),
                Cell::text("—"),
                Cell::text("—"),
            ],
        }
    }

    /// One sentence for a callout: `name` against `base` on `metric`.
    pub fn sentence(&self, name: &str, base: &str, metric: &str, base_mean: f64) -> (Tone, String) {
        let pct = |d: f64| {
            if base_mean.is_finite() && base_mean != 0.0 {
                format!(" ({}% of {base})", signed(100.0 * d / base_mean.abs()))
            } else {
                String::new()
            }
        };
        match self {
            Versus::Paired {
                mean_diff,
                ci95,
                p,
                p_holm,
                n,
                better,
            } => {
                let (tone, word) = match better {
                    Some(true) => (Tone::Good, "better than"),
                    Some(false) => (Tone::Bad, "worse than"),
                    None => (Tone::Neutral, "no difference from"),
                };
                (
                    tone,
                    format!(
                        "{name}: {word} {base} in {metric}: paired difference {} (95% CI {}, {}){}, p = {}, Holm p = {}, {n} seed pairs.",
                        signed(*mean_diff),
                        signed(ci95.0),
                        signed(ci95.1),
                        pct(*mean_diff),
                        crate::report::number::significant(*p, 3),
                        crate::report::number::significant(*p_holm, 3),
                    ),
                )
            }
            Versus::Unpaired {
                diff_of_means,
                welch_p,
                higher_is_better,
            } => {
                let sig = |p: f64| crate::report::number::significant(p, 3);
                let (tone, reading) = match welch_p {
                    Some(p) if *p < 0.05 => {
                        let better = (*diff_of_means > 0.0) == *higher_is_better;
                        let word = if better { "better" } else { "worse" };
                        (
                            Tone::Caution,
                            format!(
                                "Welch p = {}: {word} by that test alone (unpaired, uncorrected)",
                                sig(*p)
                            ),
                        )
                    }
                    Some(p) => (
                        Tone::Neutral,
                        format!("Welch p = {}: no difference shown", sig(*p)),
                    ),
                    None => (Tone::Neutral, "no test recorded".to_string()),
                };
                (
                    tone,
                    format!(
                        "{name} against {base} in {metric}: difference of means {}{}; {reading}.",
                        signed(*diff_of_means),
                        pct(*diff_of_means),
                    ),
                )
            }
        }
    }
}

/// Callouts and a table of every activation after the first against it.
pub fn versus_blocks(
    summary: &[Value],
    name_key: &str,
    metrics: &[(&str, &str, bool)],
) -> Vec<Block> {
    let Some(base) = summary.first() else {
        return Vec::new();
    };
    let base_name = text(&base[name_key]);
    let mut blocks = Vec::new();
    let mut rows = Vec::new();
    let mut paired = false;
    for row in &summary[1..] {
        let name = text(&row[name_key]);
        for &(key, label, higher) in metrics {
            let Some(v) = Versus::of(row, base, key, higher) else {
                let failed = row["runs_failed"].as_u64().or(row["failed"].as_u64());
                if key == "fitness" && failed.is_some_and(|f| f > 0) {
                    let s = format!(
                        "{name}: no {label} to compare: {} of {} runs failed.",
                        failed.unwrap_or(0),
                        text(&row["runs"])
                    );
                    blocks.push(Block::Callout(Tone::Bad, s));
                    let mut r = vec![Cell::code(name.clone()), Cell::text(label)];
                    r.extend(std::iter::repeat_with(|| Cell::text("—")).take(4));
                    r.push(Cell::Tag(Tone::Bad, "failed".into()));
                    rows.push(r);
                }
                continue;
            };
            paired |= matches!(v, Versus::Paired { .. });
            if key == "fitness" {
                let (tone, s) = v.sentence(&name, &base_name, label, num(&base[key]["mean"]));
                blocks.push(Block::Callout(tone, s));
            }
            let mut r = vec![Cell::code(name.clone()), Cell::text(label)];
            r.extend(v.cells());
            r.push(v.tag());
            rows.push(r);
        }
    }
    if rows.is_empty() {
        return blocks;
    }
    let header = if paired {
        ["difference [95% CI]", "p (paired t)", "Holm p", "pairs"]
    } else {
        ["difference of means", "Welch p", "Holm p", "pairs"]
    };
    let mut h = vec!["activation".to_string(), "metric".to_string()];
    h.extend(header.iter().map(|s| s.to_string()));
    h.push("reading".into());
    blocks.push(Block::Table(Table {
        header: h,
        rows,
        sortable: true,
    }));
    blocks.push(Block::Note(if paired {
        format!("Against {base_name}: seed-matched differences (the same seeds, data order and initial weights), mean and Student-t 95% interval, two-sided paired t-test p, Holm-adjusted over the activations of this table (one family per metric); better or worse only at Holm p < 0.05.")
    } else {
        format!("Against {base_name}: this run's files predate the paired verdict; they have each activation's mean over seeds and Welch's two-sided p (unpaired, not corrected for multiple comparisons). A tag with a question mark is p < 0.05 by that test alone.")
    }));
    blocks
}

// ----- the sections ----------------------------------------------------------

/// Per activation, mean and interval of every metric over the runs so far
/// (an unfinished run has no results.json).
fn partial_summary(config: &Value, runs: &[Value]) -> Vec<Value> {
    strings(&config["activations"])
        .iter()
        .enumerate()
        .map(|(a, name)| {
            let mine: Vec<&Value> = runs
                .iter()
                .filter(|r| r["activation_index"].as_u64() == Some(a as u64))
                .collect();
            let mut row = serde_json::json!({
                "activation": name,
                "runs": mine.len(),
                "failed": mine.iter().filter(|r| r["status"] != "ok").count(),
            });
            for (key, _, _) in METRICS {
                let xs: Vec<f64> = mine
                    .iter()
                    .filter(|r| r["status"] == "ok")
                    .filter_map(|r| r["metrics"][key].as_f64())
                    .collect();
                let s = summarize(&xs);
                let finite = |v: f64| if v.is_finite() { Value::from(v) } else { Value::Null };
                row[key] = serde_json::json!({"n": s.n, "mean": finite(s.mean), "ci95": [finite(s.ci95.0), finite(s.ci95.1)]});
            }
            row
        })
        .collect()
}

fn comparison(summary: &[Value], runs: &[Value], finished: bool) -> Section {
    let mut blocks = Vec::new();
    if finished {
        blocks.extend(versus_blocks(summary, "activation", &METRICS));
    } else {
        blocks.push(Block::Callout(
            Tone::Caution,
            "Unfinished: the means below cover the runs done so far; the comparison against the baseline appears when every run has finished.".into(),
        ));
    }
    let mut header = vec!["activation".to_string(), "runs".into(), "failed".into()];
    header.extend(METRICS.iter().map(|(_, l, _)| format!("{l} mean [95% CI]")));
    let rows = summary
        .iter()
        .map(|s| {
            let failed = s["runs_failed"].as_u64().or(s["failed"].as_u64());
            let mut r = vec![
                Cell::code(text(&s["activation"])),
                Cell::int(s["runs"].as_u64().unwrap_or(0)),
                failed.map_or(Cell::Empty, Cell::int),
            ];
            r.extend(METRICS.iter().map(|(k, _, _)| mean_ci(&s[*k])));
            r
        })
        .collect();
    blocks.push(Block::Table(Table {
        header,
        rows,
        sortable: true,
    }));
    blocks.push(Block::Note("Mean over seeds and the Student-t 95% interval; BLEU and chrF on the sacreBLEU scale (greedy generations of the validation sentences), perplexity and token accuracy teacher-forced on the validation split, fitness the weighted score of the recipe.".into()));
    let failed: Vec<Vec<Cell>> = runs
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(|r| {
            vec![
                Cell::code(text(&r["activation"])),
                Cell::int(r["seed"].as_u64().unwrap_or(0)),
                Cell::text(text(&r["status"])),
                Cell::text(text(&r["failed_step"])),
            ]
        })
        .collect();
    if !failed.is_empty() {
        blocks.push(Block::Text("Failed runs:".into()));
        blocks.push(Block::Table(Table {
            header: vec![
                "activation".into(),
                "seed".into(),
                "reason".into(),
                "step".into(),
            ],
            rows: failed,
            sortable: true,
        }));
    }
    Section {
        id: "comparison".into(),
        title: "Comparison".into(),
        blocks,
    }
}

/// Per activation: the mean training loss per step over its successful
/// seeds, the band from the lowest to the highest seed.
pub fn loss_series(acts: &[String], runs: &[Value]) -> Vec<Series> {
    acts.iter()
        .enumerate()
        .map(|(a, name)| {
            let per_seed: Vec<Vec<f64>> = runs
                .iter()
                .filter(|r| r["activation_index"].as_u64() == Some(a as u64) && r["status"] == "ok")
                .map(|r| array(&r["losses"]).iter().map(num).collect())
                .collect();
            let len = per_seed.iter().map(Vec::len).min().unwrap_or(0);
            let mut s = Series {
                label: name.clone(),
                ..Series::default()
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

fn curves(acts: &[String], runs: &[Value]) -> Section {
    let axes = Axes {
        title: "Training loss (mean over seeds; band: lowest to highest seed)".into(),
        x: "step".into(),
        y: "loss".into(),
        log_y: true,
    };
    let series = loss_series(acts, runs);
    // A log axis spans at least a decade: only for losses that fall that far.
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite() && *y > 0.0);
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    let axes = Axes {
        log_y: hi > 10.0 * lo,
        ..axes
    };
    let blocks = match line_svg(&series, &axes, (900, 460), true) {
        Ok(svg) => vec![Block::Figures(vec![Figure {
            svg,
            caption: "Training loss per step; failed runs are left out.".into(),
        }])],
        Err(e) => vec![Block::Note(format!("no chart: {e}"))],
    };
    Section {
        id: "curves".into(),
        title: "Learning curves".into(),
        blocks,
    }
}

/// Per-epoch rows (translate-t5), mean over the successful seeds.
fn epochs(acts: &[String], runs: &[Value]) -> Option<Section> {
    let keys = ["train_loss", "valid_loss", "bleu", "chrf", "ppl"];
    let mut rows = Vec::new();
    for (a, name) in acts.iter().enumerate() {
        let per_seed: Vec<Vec<Value>> = runs
            .iter()
            .filter(|r| r["activation_index"].as_u64() == Some(a as u64) && r["status"] == "ok")
            .map(|r| array(&r["epochs"]))
            .filter(|e| !e.is_empty())
            .collect();
        let n = per_seed.iter().map(Vec::len).min().unwrap_or(0);
        for e in 0..n {
            let mut row = vec![
                Cell::code(name.clone()),
                Cell::text(text(&per_seed[0][e]["epoch"])),
            ];
            for k in keys {
                let xs: Vec<f64> = per_seed.iter().filter_map(|s| s[e][k].as_f64()).collect();
                let mean = if xs.is_empty() {
                    f64::NAN
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                row.push(Cell::num(mean, DIGITS));
            }
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return None;
    }
    Some(Section {
        id: "epochs".into(),
        title: "Per epoch".into(),
        blocks: vec![
            Block::Table(Table {
                header: [
                    "activation",
                    "epoch",
                    "train loss",
                    "valid loss",
                    "BLEU",
                    "chrF",
                    "PPL",
                ]
                .map(String::from)
                .to_vec(),
                rows,
                sortable: true,
            }),
            Block::Note("Mean over the successful seeds.".into()),
        ],
    })
}

/// The kept generations of each activation's first seed, side by side.
fn samples(acts: &[String], runs: &[Value]) -> Option<Section> {
    let first: Vec<Vec<Value>> = (0..acts.len())
        .map(|a| {
            runs.iter()
                .find(|r| {
                    r["activation_index"].as_u64() == Some(a as u64)
                        && !array(&r["samples"]).is_empty()
                })
                .map(|r| array(&r["samples"]))
                .unwrap_or_default()
        })
        .collect();
    let n = first.iter().map(Vec::len).max().unwrap_or(0);
    if n == 0 {
        return None;
    }
    let reference = first.iter().find(|s| !s.is_empty()).expect("n > 0");
    let rows = (0..n)
        .map(|i| {
            let sample = reference.get(i).cloned().unwrap_or(Value::Null);
            let mut row = vec![
                Cell::text(text(&sample["source"])),
                Cell::text(text(&sample["reference"])),
            ];
            row.extend(first.iter().map(|s| {
                s.get(i)
                    .map_or(Cell::Empty, |x| Cell::text(text(&x["output"])))
            }));
            row
        })
        .collect();
    let mut header = vec!["input".to_string(), "reference".into()];
    header.extend(acts.iter().cloned());
    Some(Section {
        id: "samples".into(),
        title: "Sample generations".into(),
        blocks: vec![
            Block::Table(Table {
                header,
                rows,
                sortable: false,
            }),
            Block::Note("Greedy generations of each activation's first seed for the same validation inputs.".into()),
        ],
    })
}

fn run_table(runs: &[Value]) -> Section {
    let mut header = [
        "activation",
        "seed",
        "status",
        "steps",
        "loss first",
        "loss last",
    ]
    .map(String::from)
    .to_vec();
    header.extend(METRICS.iter().map(|(_, l, _)| l.to_string()));
    header.extend(["train s", "eval s"].map(String::from));
    let rows = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                Cell::code(text(&r["activation"])),
                Cell::int(r["seed"].as_u64().unwrap_or(0)),
                if r["status"] == "ok" {
                    Cell::Tag(Tone::Good, "ok".into())
                } else {
                    Cell::Tag(Tone::Bad, text(&r["status"]))
                },
                count(&r["steps"]),
                Cell::num(num(&r["loss_first"]), DIGITS),
                Cell::num(num(&r["loss_last"]), DIGITS),
            ];
            row.extend(
                METRICS
                    .iter()
                    .map(|(k, _, _)| Cell::num(num(&r["metrics"][*k]), DIGITS)),
            );
            row.push(Cell::num(num(&r["timing"]["train"]), 3));
            row.push(Cell::num(num(&r["timing"]["eval"]), 3));
            row
        })
        .collect();
    Section {
        id: "runs".into(),
        title: "Runs".into(),
        blocks: vec![Block::Table(Table {
            header,
            rows,
            sortable: true,
        })],
    }
}

fn settings(dir: &Path, config: &Value, results: Option<&Value>) -> Section {
    let mut facts = vec![
        (
            "command".to_string(),
            Cell::code(command_line(&config["command"])),
        ),
        (
            "activations".into(),
            Cell::code(strings(&config["activations"]).join(" · ")),
        ),
        (
            "seeds".into(),
            Cell::code(strings(&config["seeds"]).join(", ")),
        ),
        ("device".into(), Cell::code(text(&config["device"]))),
    ];
    flatten("versions", &config["versions"], &mut facts);
    let mut recipe = Vec::new();
    flatten("", &config["recipe"], &mut recipe);
    let mut data = Vec::new();
    if let Some(r) = results {
        flatten("", &r["data"], &mut data);
    }
    Section {
        id: "settings".into(),
        title: "Settings, versions and files".into(),
        blocks: vec![
            Block::Facts(facts),
            Block::Details("The training recipe".into(), vec![Block::Facts(recipe)]),
            Block::Details("The data (results.json)".into(), vec![Block::Facts(data)]),
            Block::Details(
                "Files of this run directory".into(),
                vec![Block::Table(files_table(dir))],
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let c = json!(["actforge", "train", "--act", "gated_gate(x, 1.0)", "it's"]);
        assert_eq!(
            command_line(&c),
            "actforge train --act 'gated_gate(x, 1.0)' 'it'\\''s'"
        );
    }

    #[test]
    fn flatten_names_every_leaf() {
        let mut out = Vec::new();
        flatten(
            "r",
            &json!({"a": {"b": 1, "c": [1, 2]}, "d": null}),
            &mut out,
        );
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["r.a.b", "r.a.c", "r.d"]);
    }

    #[test]
    fn loss_series_band_the_seeds() {
        let runs = vec![
            json!({"activation_index": 0, "status": "ok", "losses": [4.0, 2.0]}),
            json!({"activation_index": 0, "status": "ok", "losses": [6.0, 4.0, 1.0]}),
            json!({"activation_index": 0, "status": "diverged", "losses": [9.0, 9.0]}),
        ];
        let s = loss_series(&["gelu".into()], &runs);
        assert_eq!(s[0].points, vec![(1.0, 5.0), (2.0, 3.0)]);
        assert_eq!(s[0].band, vec![(1.0, 4.0, 6.0), (2.0, 2.0, 4.0)]);
    }
}
