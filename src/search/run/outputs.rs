//! What a search writes besides its logs and checkpoint:
//!
//! * after every generation: `logbook.jsonl` and `logbook.csv` (see
//!   [`super::logbook`]), `hall_of_fame.json` (best first: `rank`,
//!   `formula` (the tree's text), `simplified` (infix), `canonical` (the
//!   formula evaluated), `hash`, `fitness`, `objectives`, `nodes`, `size`,
//!   `height`, `generation`, `metrics`, `seeds` (the training seeds of its
//!   fitness)) and `pareto.json` (every
//!   non-dominated (fitness, nodes) pair seen, same fields, best fitness
//!   first);
//! * at the end: `fitness.png` (best, mean and range over generations),
//!   `pareto.png` (every evaluated formula, the front highlighted),
//!   `hall_of_fame/hof-K.png` (each entry and its derivative next to GELU),
//!   `best_kernel/` (the exported kernel package of the best formula, and
//!   its SASS figures in `sass.json` where nvdisasm and cuobjdump exist),
//!   the final retrain against GELU (`final.json`), and a [`Summary`];
//! * after every generation and at the end: `report.html`, the run's page
//!   ([`super::page`]).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::diff::Function;
use crate::error::Result;
use crate::export::{export, ExportSpec};
use crate::gp::{PrimitiveSet, Tree};
use crate::ir::Library;
use crate::report::chart::{line_chart, scatter, Axes, Dot, Series};
use crate::simplify::hash_hex;
use crate::store::files::{write_atomic, write_csv, write_json};
use crate::store::safe::{real_dir, write_dir_with, write_with};

use super::dir::{
    BEST_KERNEL, CHECKPOINT, CONFIG, EVALUATIONS, FINAL, FINAL_DIR, FITNESS_PNG, HALL_OF_FAME,
    HOF_PLOTS, LOGBOOK_CSV, LOGBOOK_JSONL, MERGES, PARETO, PARETO_PNG, REPORT,
};
use super::logbook::{Counters, CSV_HEADER};
use super::state::State;
use crate::gp::archive::Entry;
use crate::search::candidate::Candidate;
use crate::search::config::Settings;
use crate::search::dedup::Dedup;
use crate::search::json::num;
use crate::search::progress::Observer;
use crate::search::retrain::{self, Entrant, Plan, Retrain};

/// What the outputs read of a run: its directory, settings, primitive
/// set, state and fitness cache (the engine lends them; nothing here
/// changes them).
pub struct RunView<'a> {
    pub dir: &'a Path,
    pub settings: &'a Settings,
    pub set: &'a PrimitiveSet,
    pub state: &'a State,
    pub dedup: &'a Dedup,
}

/// The best formula of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    pub formula: String,
    pub simplified: Option<String>,
    pub hash: u64,
    pub fitness: f64,
    pub nodes: usize,
    /// The training seeds its fitness is the mean over.
    pub seeds: usize,
    /// With racing: its mean paired difference from GELU at those seeds
    /// (what selection read).
    pub vs_gelu: Option<f64>,
}

/// What a finished search reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub dir: PathBuf,
    /// Generations run (the initial population is generation 0).
    pub generations: usize,
    pub totals: Counters,
    /// Distinct canonical formulas known.
    pub distinct: usize,
    pub best: Option<Best>,
    pub hall_of_fame: usize,
    pub pareto: usize,
    pub seconds: f64,
    /// (what, where), for the table.
    pub files: Vec<(String, PathBuf)>,
    pub retrain: Vec<retrain::Row>,
    /// Where the final verdict was measured (`None` without one).
    pub held_out: Option<HeldOut>,
    pub warnings: Vec<String>,
}

/// The conditions of the final verdict, for the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOut {
    /// `test`.
    pub split: String,
    pub seeds: Vec<u64>,
    pub steps: Option<u64>,
    /// The largest minimum detectable effect of the formulas, % of GELU's
    /// fitness.
    pub mde_percent: Option<f64>,
}

impl Summary {
    /// `{"dir", "generations", "totals": {counters}, "distinct", "best":
    /// {"formula", "simplified", "hash", "fitness", "nodes", "seeds",
    /// "vs_gelu" (racing: the mean paired difference from GELU, else
    /// null)} | null,
    /// "hall_of_fame", "pareto", "seconds", "files": {what: path},
    /// "retrain": [{"activation", "formula", "runs_ok", "mean", "ci95",
    /// "welch_p", "verdict", "p_holm"}], "final": {"split", "seeds",
    /// "steps", "mde_percent"} | null, "warnings"}`.
    pub fn to_json(&self) -> Value {
        let files: serde_json::Map<String, Value> = self
            .files
            .iter()
            .map(|(k, p)| (k.clone(), json!(p.display().to_string())))
            .collect();
        json!({
            "dir": self.dir.display().to_string(),
            "generations": self.generations,
            "totals": self.totals.to_json(),
            "distinct": self.distinct,
            "best": self.best.as_ref().map(|b| json!({
                "formula": b.formula,
                "simplified": b.simplified,
                "hash": hash_hex(b.hash),
                "fitness": num(b.fitness),
                "nodes": b.nodes,
                "seeds": b.seeds,
                "vs_gelu": b.vs_gelu.map(num),
            })),
            "hall_of_fame": self.hall_of_fame,
            "pareto": self.pareto,
            "seconds": num(self.seconds),
            "files": files,
            "retrain": self.retrain.iter().map(|r| json!({
                "activation": r.label,
                "formula": r.formula,
                "runs_ok": r.n_ok,
                "mean": num(r.mean),
                "ci95": [num(r.ci95.0), num(r.ci95.1)],
                "welch_p": r.welch_p.map_or(Value::Null, num),
                "verdict": r.vs_baseline.map(|d| d.verdict.word()),
                "p_holm": r.vs_baseline.and_then(|d| d.p_holm).map_or(Value::Null, num),
            })).collect::<Vec<_>>(),
            "final": self.held_out.as_ref().map(|h| json!({
                "split": h.split,
                "seeds": h.seeds,
                "steps": h.steps,
                "mde_percent": h.mde_percent.map_or(Value::Null, num),
            })),
            "warnings": self.warnings,
        })
    }
}

/// One archived formula as JSON (hall of fame and Pareto front).
fn member_json(s: &RunView, rank: usize, e: &Entry<Tree>) -> Value {
    let r = s.dedup.get(e.key);
    json!({
        "rank": rank,
        "formula": e.item.to_formula(s.set),
        "simplified": r.and_then(|r| r.simplified.clone()),
        "canonical": r.map(|r| r.formula.clone()),
        "hash": hash_hex(e.key),
        "fitness": r.and_then(|r| r.fitness).map_or(Value::Null, num),
        "objectives": e.fitness.iter().map(|&f| num(f)).collect::<Vec<_>>(),
        "nodes": r.map(|r| r.nodes),
        "size": e.item.len(),
        "height": e.item.height(s.set),
        "generation": r.map(|r| r.generation),
        "merged_from": r.and_then(|r| r.merged_from).map(hash_hex),
        "metrics": r.map(|r| Value::Object(r.metrics.clone())),
        "seeds": r.map(|r| r.seeds.clone()),
    })
}

/// The hall of fame as written to `hall_of_fame.json`.
pub fn hall_of_fame_json(s: &RunView) -> Value {
    Value::Array(
        s.state
            .hof
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| member_json(s, i + 1, e))
            .collect(),
    )
}

fn pareto_json(s: &RunView) -> Value {
    Value::Array(
        s.state
            .pareto
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| member_json(s, i + 1, e))
            .collect(),
    )
}

/// The files rewritten after every generation.
pub fn write_progress(s: &RunView) -> Result<()> {
    let mut text = String::new();
    for row in &s.state.logbook {
        text.push_str(&row.to_json().to_string());
        text.push('\n');
    }
    write_atomic(&s.dir.join(LOGBOOK_JSONL), text.as_bytes())?;
    let rows: Vec<Vec<String>> = s.state.logbook.iter().map(|r| r.fields()).collect();
    write_csv(&s.dir.join(LOGBOOK_CSV), &CSV_HEADER, &rows)?;
    write_json(&s.dir.join(HALL_OF_FAME), &hall_of_fame_json(s))?;
    write_json(&s.dir.join(PARETO), &pareto_json(s))
}

/// The final stages: plots, the exported kernel, the retrain against
/// GELU. A failed plot or export is a warning: the search's results
/// stand.
pub fn finish(s: &RunView, retrain: &dyn Retrain, obs: &mut dyn Observer) -> Result<Summary> {
    write_progress(s)?;
    let mut warnings = Vec::new();
    let mut warn = |what: &str, r: Result<()>, warnings: &mut Vec<String>| {
        if let Err(e) = r {
            let w = format!("{what}: {e}");
            obs.note(&format!("warning: {w}"));
            warnings.push(w);
        }
    };
    warn("fitness plot", fitness_plot(s), &mut warnings);
    warn("Pareto plot", pareto_plot(s), &mut warnings);
    warn("hall-of-fame plots", hof_plots(s), &mut warnings);
    if s.settings.export {
        warn(
            "kernel export",
            export_best(s, &mut warnings),
            &mut warnings,
        );
    }
    let (rows, held_out) = if s.settings.retrain_top > 0 && !s.state.hof.is_empty() {
        let (rows, held) = final_retrain(s, retrain)?;
        (rows, Some(held))
    } else {
        (Vec::new(), None)
    };
    if let Some(w) = write_page(s, obs) {
        warnings.push(w);
    }
    let files = existing_files(s.dir);
    let mut summary = summary(s, files, rows);
    summary.held_out = held_out;
    summary.warnings = warnings;
    Ok(summary)
}

/// The report page (`report.html`, and `final/report.html` once the
/// final retrain wrote its folder), rebuilt from the run directory's
/// files. A failure is a warning (returned and noted): the results stand.
pub fn write_page(s: &RunView, obs: &mut dyn Observer) -> Option<String> {
    let e = super::page::write(s.dir).err()?;
    let w = format!("report page: {e}");
    obs.note(&format!("warning: {w}"));
    Some(w)
}

/// The outputs present in `dir`, as (what, path), for the summary.
pub fn existing_files(dir: &Path) -> Vec<(String, PathBuf)> {
    [
        ("config", CONFIG),
        ("checkpoint", CHECKPOINT),
        ("evaluations", EVALUATIONS),
        ("merges", MERGES),
        ("logbook", LOGBOOK_CSV),
        ("hall of fame", HALL_OF_FAME),
        ("Pareto front", PARETO),
        ("Pareto plot", PARETO_PNG),
        ("fitness plot", FITNESS_PNG),
        ("activation plots", HOF_PLOTS),
        ("best kernel", BEST_KERNEL),
        ("final retrain", FINAL),
        ("report", REPORT),
    ]
    .into_iter()
    .map(|(what, name)| (what.to_string(), dir.join(name)))
    .filter(|(_, p)| p.exists())
    .collect()
}

/// The summary of a run's current state.
pub fn summary(s: &RunView, files: Vec<(String, PathBuf)>, retrain: Vec<retrain::Row>) -> Summary {
    let best = s.state.hof.entries().first().map(|e| {
        let r = s.dedup.get(e.key);
        Best {
            formula: e.item.to_formula(s.set),
            simplified: r.and_then(|r| r.simplified.clone()),
            hash: e.key,
            fitness: r.and_then(|r| r.fitness).unwrap_or(f64::NAN),
            nodes: r.map_or(0, |r| r.nodes),
            seeds: r.map_or(0, |r| r.seeds.len()),
            vs_gelu: s.settings.seeding.racing.and(e.fitness.first().copied()),
        }
    });
    Summary {
        dir: s.dir.to_path_buf(),
        generations: s.state.next_gen,
        totals: s.state.totals.clone(),
        distinct: s.dedup.len(),
        best,
        hall_of_fame: s.state.hof.len(),
        pareto: s.state.pareto.len(),
        seconds: s.state.elapsed,
        files,
        retrain,
        held_out: None,
        warnings: Vec::new(),
    }
}

fn fitness_plot(s: &RunView) -> Result<()> {
    let log = &s.state.logbook;
    let g = |r: &super::logbook::Row| r.gen as f64;
    let best = Series {
        label: "best".into(),
        points: log.iter().map(|r| (g(r), r.fitness.max)).collect(),
        ..Series::default()
    };
    let mean = Series {
        label: "mean (band: min to max)".into(),
        points: log.iter().map(|r| (g(r), r.fitness.mean)).collect(),
        band: log
            .iter()
            .map(|r| (g(r), r.fitness.min, r.fitness.max))
            .collect(),
        dashed: false,
    };
    let axes = Axes {
        title: "Fitness of the population over generations".into(),
        x: "generation".into(),
        y: "fitness".into(),
        log_y: false,
    };
    write_with(&s.dir.join(FITNESS_PNG), |p| {
        line_chart(&[best, mean], &axes, p)
    })
}

fn pareto_plot(s: &RunView) -> Result<()> {
    let front: std::collections::HashSet<u64> =
        s.state.pareto.entries().iter().map(|e| e.key).collect();
    let dots: Vec<Dot> = s
        .dedup
        .records()
        .into_iter()
        .filter_map(|r| {
            r.fitness.map(|f| Dot {
                x: r.nodes as f64,
                y: f,
                highlight: front.contains(&r.key),
            })
        })
        .collect();
    let axes = Axes {
        title: "Fitness against complexity (Pareto front highlighted)".into(),
        x: "nodes of the simplified formula".into(),
        y: "fitness".into(),
        log_y: false,
    };
    write_with(&s.dir.join(PARETO_PNG), |p| scatter(&dots, &axes, p))
}

/// f, f′ and GELU, GELU′ on [-5, 5].
fn activation_series(label: &str, f: &Function) -> Vec<Series> {
    let gelu = Function::new(
        &Library::standard()
            .parse("gelu(x)")
            .expect("gelu is in the prelude"),
    );
    let xs: Vec<f64> = (0..=400).map(|i| -5.0 + 0.025 * i as f64).collect();
    let line = |name: String, g: &dyn Fn(f64) -> f64, dashed: bool| Series {
        label: name,
        points: xs.iter().map(|&x| (x, g(x))).collect(),
        band: Vec::new(),
        dashed,
    };
    vec![
        line(label.to_string(), &|x| f.value(x), false),
        line(format!("{label}'"), &|x| f.derivative(x), false),
        line("GELU".into(), &|x| gelu.value(x), true),
        line("GELU'".into(), &|x| gelu.derivative(x), true),
    ]
}

fn function_of(s: &RunView, tree: &Tree) -> Result<Function> {
    Ok(Function::new(
        &s.set.library().parse(&tree.to_formula(s.set))?,
    ))
}

fn hof_plots(s: &RunView) -> Result<()> {
    let dir = s.dir.join(HOF_PLOTS);
    real_dir(&dir)?;
    for (i, e) in s.state.hof.entries().iter().enumerate() {
        let f = function_of(s, &e.item)?;
        let title = e.item.to_formula(s.set);
        let axes = Axes {
            title: shorten(&title, 90),
            x: "x".into(),
            y: "value".into(),
            log_y: false,
        };
        let label = format!("hof-{}", i + 1);
        let series = activation_series(&label, &f);
        write_with(&dir.join(format!("{label}.png")), |p| {
            line_chart(&series, &axes, p)
        })?;
    }
    Ok(())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max - 1).collect();
    format!("{head}…")
}

fn export_best(s: &RunView, warnings: &mut Vec<String>) -> Result<()> {
    let Some(best) = s.state.hof.entries().first() else {
        return Ok(());
    };
    let formula = best.item.to_formula(s.set);
    let f = function_of(s, &best.item)?;
    // Exported into a fresh folder, then put in place of the old one (a
    // link planted at `best_kernel` is replaced, never written through).
    let arch = s.settings.arch.0;
    let (report, sass) = write_dir_with(&s.dir.join(BEST_KERNEL), move |out| {
        let report = export(&ExportSpec {
            formula: &formula,
            function: &f,
            out,
            name: Some("best"),
            arch,
            replace: false,
            math: crate::codegen::MathMode::default(),
        })?;
        // The package stands without its SASS figures: a failure there is
        // a warning.
        let sass = match report.no_binaries {
            None => sass_figures(f, arch, out).err(),
            Some(_) => None,
        };
        Ok((report, sass))
    })?;
    if let Some(why) = report.no_binaries {
        warnings.push(format!(
            "the exported kernel has no PTX/CUBIN (NVRTC: {why})"
        ));
    }
    if let Some(e) = sass {
        warnings.push(format!("SASS figures of the exported kernel: {e}"));
    }
    Ok(())
}

/// `best_kernel/sass.json`: the SASS roofline of the exported formula
/// (`actforge bench-compile --sass --json`), for the report page. Only
/// where nvdisasm and cuobjdump are found; nothing otherwise.
fn sass_figures(f: Function, arch: u32, out: &Path) -> Result<()> {
    use crate::bench::sass::{measure, report_json, SassSpec, H200};
    use crate::runtime::tools::{find_cuobjdump, find_nvdisasm};
    if find_nvdisasm().is_none() || find_cuobjdump().is_none() {
        return Ok(());
    }
    let spec = SassSpec {
        formulas: &[("best".to_string(), f)],
        arch,
        math: crate::codegen::MathMode::default(),
        inlining: crate::codegen::Inlining::Auto,
    };
    let (reports, times) = measure(&spec)?;
    write_json(
        &out.join("sass.json"),
        &report_json(&spec, &reports, &times, &H200),
    )
}

/// Every training seed the search's evaluations record (a line's `seeds`,
/// or for lines written before lines recorded them, its training runs'
/// `seed`s), with every seed the settings let a candidate train with.
fn search_seeds(settings: &Settings, dir: &Path) -> Result<std::collections::BTreeSet<u64>> {
    let mut seeds: std::collections::BTreeSet<u64> = settings.seed_pool().into_iter().collect();
    let lines = crate::store::files::read_json_lines(&dir.join(EVALUATIONS))?;
    for v in &lines {
        let listed = v["seeds"].as_array().into_iter().flatten();
        let runs = v["metrics"]["runs"].as_array().into_iter().flatten();
        seeds.extend(
            listed
                .chain(runs.map(|r| &r["seed"]))
                .filter_map(Value::as_u64),
        );
    }
    Ok(seeds)
}

/// The final verdict's seeds, checked to be disjoint from every seed the
/// search trained with.
fn verdict_seeds(settings: &Settings, dir: &Path) -> Result<Vec<u64>> {
    let seeds = settings.retrain_seed_list();
    let used = search_seeds(settings, dir)?;
    let shared: Vec<u64> = seeds.iter().filter(|x| used.contains(x)).copied().collect();
    if !shared.is_empty() {
        return Err(crate::error::Error::Input {
            path: dir.join(EVALUATIONS).display().to_string(),
            line: None,
            message: format!(
                "the final verdict's seeds {shared:?} were used in the search: a held-out verdict needs fresh seeds (the run directory was changed, or its settings were)"
            ),
        });
    }
    Ok(seeds)
}

/// The held-out verdict: the hall of fame's best against GELU, trained on
/// the whole training split with fresh seeds, scored on the test split.
fn final_retrain(s: &RunView, retrain: &dyn Retrain) -> Result<(Vec<retrain::Row>, HeldOut)> {
    let lib = s.set.library();
    let mut entrants = vec![Entrant {
        label: "gelu".into(),
        candidate: Candidate::parse(0, "gelu(ARG0)", lib)?,
    }];
    for (i, e) in s
        .state
        .hof
        .entries()
        .iter()
        .take(s.settings.retrain_top)
        .enumerate()
    {
        entrants.push(Entrant {
            label: format!("hof-{}", i + 1),
            candidate: Candidate::parse(e.key, &e.item.to_formula(s.set), lib)?,
        });
    }
    let plan = Plan {
        seeds: verdict_seeds(s.settings, s.dir)?,
        steps: s.settings.seeding.final_steps.map(|n| n as u64),
    };
    let dir: &Path = &s.dir.join(FINAL_DIR);
    // The training evaluator runs the `train` comparison here on the whole
    // training split, scored on the test split, writing its results.json
    // and curves into `dir`.
    let done = retrain.retrain(&entrants, &plan, dir)?;
    write_json(&s.dir.join(FINAL), &retrain::to_json(&done, &plan.seeds))?;
    let rows = retrain::table(&done.results);
    let held = HeldOut {
        split: done.split.clone(),
        seeds: plan.seeds.clone(),
        steps: done.steps,
        mde_percent: retrain::worst_mde_percent(&rows),
    };
    Ok((rows, held))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::seeding::Seeding;

    /// The verdict's seeds are checked against every seed the log records:
    /// a line that trained with one of them (a changed run directory) is
    /// refused, naming the file.
    #[test]
    fn verdict_seeds_must_be_fresh() {
        let dir =
            std::env::temp_dir().join(format!("actforge-verdict-seeds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let settings = Settings {
            retrain_seeds: 3,
            seeding: Seeding::LEGACY,
            ..Settings::default()
        };
        let log = dir.join(EVALUATIONS);
        std::fs::write(&log, "{\"seeds\": [0]}\n").unwrap();
        assert_eq!(verdict_seeds(&settings, &dir).unwrap(), vec![1, 2, 3]);
        // Racing (the default): after every seed a candidate can earn.
        let raced = Settings {
            retrain_seeds: 3,
            ..Settings::default()
        };
        assert_eq!(verdict_seeds(&raced, &dir).unwrap(), vec![4, 5, 6]);
        std::fs::write(
            &log,
            "{\"seeds\": [0]}\n{\"metrics\": {\"runs\": [{\"seed\": 2}]}}\n",
        )
        .unwrap();
        let e = verdict_seeds(&settings, &dir).unwrap_err().to_string();
        assert!(e.contains("evaluations.jsonl") && e.contains("[2]"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
