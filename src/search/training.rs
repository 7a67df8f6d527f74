//! The real evaluator: a candidate's fitness is the `train` recipe
//! (`crate::fitness`) run on it, and the final comparison is the `train`
//! comparison (`experiment`) of the hall of fame against GELU.
//!
//! [`Training`] prepares the data once (corpus, split, tokenizer,
//! thinning, encoded examples) and shares it between all worker threads;
//! every candidate then trains from the same initial weights and batch
//! order for a given seed (common random numbers), so fitness differences
//! come from the activation alone. A job's result depends only on its
//! formula and seeds: training is bit-identical with any number of CPU
//! threads (`tests/train.rs`), so the worker count never changes a search.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::experiment::{run_built_on, versions, Experiment, Progress, GELU_LABEL};
use crate::fitness::{
    lockstep_functions, run, Holdout, Length, Outcome, Prepared, Recipe, RunOptions, Status,
    StepInfo,
};
use crate::ir::{to_prefix, Library};
use crate::op::{Activation, FusedActivation};
use crate::store::files::write_json;

use super::candidate::Candidate;
use super::config::TrainSettings;
use super::exec::executor::{Evaluate, Job, JobResult};
use super::progress::TrainingObserver;
use super::retrain::{Entrant, Plan, Retrain, RetrainResult, Retrained};

/// Training steps per candidate on the CPU unless `--steps` says
/// otherwise: enough for the loss to separate activations on the built-in
/// Q&A data (see the README's search section), few enough that the
/// default search finishes in minutes on two cores.
pub const CPU_STEPS: u64 = 150;

/// The recipe a search's training settings describe: the task's defaults
/// for the device, with the search's steps ([`CPU_STEPS`] on the CPU by
/// default), batch size, preset, thinning and fitness weights. `thin = 1`
/// trains on all the training data.
pub fn recipe(t: &TrainSettings) -> Result<Recipe> {
    let task = t.task;
    let mut r = Recipe::for_task(task, t.device.is_cuda());
    match (t.steps, t.device) {
        (Some(steps), _) => r.length = Length::Steps(steps as u64),
        (None, Device::Cpu) => r.length = Length::Steps(CPU_STEPS),
        (None, _) => {}
    }
    if let Some(b) = t.batch_size {
        r.batch_size = b;
    }
    if let Some(w) = t.weights {
        r.weights = w;
    }
    if let Some(p) = &t.preset {
        r.preset = p.clone();
    }
    r.thin = (t.thin < 1.0).then_some(t.thin);
    r.validate()?;
    Ok(r)
}

/// `auto`: `cuda` when this build has the `cuda` feature and a GPU answers,
/// else `cpu`; any other name is parsed ([`Device::parse`]).
pub fn resolve_device(name: &str) -> Result<Device> {
    if name != "auto" {
        return Device::parse(name);
    }
    if cfg!(feature = "cuda") && candle_core::Device::new_cuda(0).is_ok() {
        Ok(Device::Cuda(None))
    } else {
        Ok(Device::Cpu)
    }
}

/// When several workers train on the CPU at once, each one's matrix
/// products run on one thread (`RAYON_NUM_THREADS=1`, which candle's CPU
/// backend reads per call): N single-threaded trainings on N cores beat N
/// trainings fighting over every core. A value the user set is kept.
/// Call before any worker starts.
pub fn share_cpu_between(workers: usize, device: Device) {
    if workers > 1 && device.is_cpu() && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// The recipe of the final verdict: `search`'s recipe on the whole
/// training split (no thinning), for `steps` or else the task recipe's
/// full length on this device.
pub fn final_recipe(search: &Recipe, steps: Option<u64>, gpu: bool) -> Recipe {
    let mut r = search.clone();
    r.thin = None;
    r.length = match steps {
        Some(s) => Length::Steps(s),
        None => Recipe::for_task(search.task, gpu).length,
    };
    r
}

/// Trains candidates (and, at the end, the hall of fame against GELU).
///
/// The candidates' data ([`Training::prepared`]) is prepared with the
/// test split withheld ([`Holdout::ValidWithoutTest`]): nothing a search
/// selects with can read a test pair. The final verdict prepares its own
/// data ([`final_recipe`], scored on [`Holdout::Test`]) when it starts.
pub struct Training {
    /// The search's recipe, data prepared (thinned), no test split.
    prep: Arc<Prepared>,
    /// Where it trains, opened (`device`, as the settings name it).
    candle: candle_core::Device,
    device: Device,
    /// The final verdict's preparation (whole training split, test split
    /// scored), made when the final comparison starts.
    full: OnceLock<Result<Arc<Prepared>>>,
    /// The primitive set's library (formulas may use its definitions).
    library: Arc<Library>,
    /// Who hears of each job's steps and the final retrain's runs (the
    /// cli's bars), if anyone.
    observer: Option<Arc<dyn TrainingObserver>>,
}

impl Training {
    /// Prepare the data of `t` (fails here, before any search starts, on a
    /// missing corpus, a bad preset or an unavailable device).
    /// Formulas are read with `library`; `observer` hears of each
    /// evaluation's steps and the final retrain's runs.
    pub fn new(
        t: &TrainSettings,
        library: Arc<Library>,
        observer: Option<Arc<dyn TrainingObserver>>,
    ) -> Result<Training> {
        Training::from_recipe(&recipe(t)?, t.device, library, observer)
    }

    /// Train `recipe` on `device`: a worker
    /// of a run on a device of its own keeps the run's recipe.
    pub fn from_recipe(
        recipe: &Recipe,
        device: Device,
        library: Arc<Library>,
        observer: Option<Arc<dyn TrainingObserver>>,
    ) -> Result<Training> {
        let candle = device.open()?;
        let prep = Prepared::scored_on(recipe, Holdout::ValidWithoutTest)?;
        Ok(Training {
            prep: Arc::new(prep),
            candle,
            device,
            full: OnceLock::new(),
            library,
            observer,
        })
    }

    /// The prepared data candidates train on (validation scored, the test
    /// split withheld).
    pub fn prepared(&self) -> &Prepared {
        &self.prep
    }

    /// The fused activation of a candidate (its function, as built).
    fn activation(c: &Candidate) -> Activation {
        Activation::Fused(FusedActivation::from_function(
            &c.text,
            (*c.function).clone(),
        ))
    }

    /// The activation spec of a final-comparison entrant: GELU is the
    /// framework's own GELU (the baseline a user would otherwise train
    /// with); the others are fused, spelled with the standard prelude
    /// (a formula using the primitive set's own definitions is written out
    /// over intrinsics).
    ///
    /// The spec is what the folder's `config.json` records (so that
    /// `actforge train --resume` can open it); what trains is the
    /// entrant's candidate, as built ([`Training::entrant_activation`]).
    fn spec(&self, e: &Entrant) -> Result<String> {
        let text = &e.candidate.text;
        if e.label == "gelu" {
            return Ok("gelu".into());
        }
        if crate::ir::parse(text).is_ok() {
            return Ok(format!("fused:{text}"));
        }
        let expr = self.library.parse(text)?;
        Ok(format!("fused:{}", to_prefix(&expr.graph, expr.root)))
    }

    /// What an entrant trains as: the framework's GELU for `gelu`, else its
    /// candidate's fused activation.
    fn entrant_activation(e: &Entrant) -> Activation {
        if e.label == "gelu" {
            Activation::Gelu
        } else {
            Training::activation(&e.candidate)
        }
    }

    /// Runs of the final verdict at once: one per core on the CPU when each
    /// run's math is on one thread (`RAYON_NUM_THREADS=1`, as
    /// [`share_cpu_between`] sets for several workers), else one. Results
    /// do not depend on it.
    fn final_workers(&self) -> usize {
        let single = std::env::var("RAYON_NUM_THREADS").is_ok_and(|v| v.trim() == "1");
        if matches!(self.device, Device::Cpu) && single {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        }
    }

    /// A line for the user, if anyone listens.
    fn say(&self, line: &str) {
        if let Some(o) = &self.observer {
            o.line(line);
        }
    }

    /// The final verdict's data: the whole training split, scored on the
    /// test split, for `steps` (see [`final_recipe`]). Made once.
    pub fn final_data(&self, steps: Option<u64>) -> Result<Arc<Prepared>> {
        let made = self.full.get_or_init(|| {
            let gpu = !matches!(self.device, Device::Cpu);
            let r = final_recipe(&self.prep.recipe, steps, gpu);
            Prepared::scored_on(&r, Holdout::Test).map(Arc::new)
        });
        match made {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(Error::Usage(format!(
                "preparing the whole training split and the test split for the final verdict: {e}"
            ))),
        }
    }
}

/// The mean of `key` in the evaluations' metrics (`null` when any is
/// missing or non-finite).
fn mean_metric(outcomes: &[Outcome], key: &str) -> Value {
    let xs: Option<Vec<f64>> = outcomes
        .iter()
        .map(|o| {
            o.eval
                .as_ref()
                .map(|e| e.metrics_json()[key].as_f64())
                .unwrap_or(None)
        })
        .collect();
    match xs {
        Some(xs) if !xs.is_empty() => {
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            if m.is_finite() {
                json!(m)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

/// One seed's line in a candidate's metrics (no per-step losses: the
/// evaluations log stays small).
fn run_line(o: &Outcome) -> Value {
    let (first, last) = o.loss_first_last();
    json!({
        "seed": o.seed,
        "status": o.status.label(),
        "steps": o.steps,
        "loss_first": crate::fitness::evaluate::finite(first),
        "loss_last": crate::fitness::evaluate::finite(last),
        "metrics": o.eval.as_ref().map(|e| e.metrics_json()),
        "train_seconds": o.timing.train,
        "eval_seconds": o.timing.eval,
    })
}

/// A job's outcomes, one per seed in order, or why it failed at the
/// first seed that did (with that seed's outcome when it has one).
type Seeds = std::result::Result<Vec<Outcome>, (String, Option<Box<Outcome>>)>;

/// A job's result from its outcomes, one per seed in order (`Err`: the
/// first seed that failed, with its outcome when it has one). `start`:
/// when its evaluation began.
fn job_result(job: &Job, outcomes: Seeds, start: Instant) -> JobResult {
    let seconds = start.elapsed().as_secs_f64();
    let outcomes = match outcomes {
        Ok(o) => o,
        Err((reason, outcome)) => {
            let mut r = JobResult::failed(job.key(), reason);
            r.seconds = seconds;
            if let Some(o) = outcome {
                r.metrics.insert("runs".into(), json!([run_line(&o)]));
            }
            return r;
        }
    };
    let fitness: Option<Vec<f64>> = outcomes.iter().map(Outcome::fitness).collect();
    let mut metrics = Map::new();
    for key in ["fitness", "ppl", "acc", "bleu", "chrf", "valid_loss"] {
        metrics.insert(key.into(), mean_metric(&outcomes, key));
    }
    metrics.insert(
        "runs".into(),
        Value::Array(outcomes.iter().map(run_line).collect()),
    );
    match fitness {
        Some(fs) if !fs.is_empty() => JobResult {
            key: job.key(),
            fitness: Some(fs.iter().sum::<f64>() / fs.len() as f64),
            metrics,
            failure: None,
            seconds,
            worker: 0,
        }
        .normalized(),
        _ => JobResult {
            metrics,
            seconds,
            ..JobResult::failed(job.key(), "the run gave no evaluation")
        },
    }
}

/// Why `outcome` of `seed` failed, if it did.
fn seed_failure(outcome: &Outcome, seed: u64) -> Option<String> {
    match &outcome.status {
        Status::Failed { reason, step } => Some(format!("{reason} (seed {seed}, step {step})")),
        _ => None,
    }
}

impl Evaluate for Training {
    fn evaluate(&self, job: &Job) -> JobResult {
        let start = Instant::now();
        let act = Training::activation(&job.candidate);
        let steps = crate::fitness::run::total_steps(&self.prep);
        let progress = (self.observer.as_ref()).map(|o| o.job_started(job.formula(), steps));
        let on_step = |i: &StepInfo| {
            if let Some(p) = &progress {
                p.step(i.step);
            }
        };
        let opts = RunOptions {
            on_step: Some(&on_step),
            ..RunOptions::default()
        };
        let mut outcomes = Vec::with_capacity(job.seeds.len());
        for &seed in &job.seeds {
            if let Some(p) = &progress {
                p.seed_started(seed);
            }
            let outcome = match run(&self.prep, &act, seed, &self.candle, &opts) {
                Ok(o) => o,
                Err(e) => {
                    let why = format!("training failed (seed {seed}): {e}");
                    return job_result(job, Err((why, None)), start);
                }
            };
            if let Some(why) = seed_failure(&outcome, seed) {
                return job_result(job, Err((why, Some(Box::new(outcome)))), start);
            }
            outcomes.push(outcome);
        }
        job_result(job, Ok(outcomes), start)
    }

    /// The group trains in lockstep ([`crate::fitness::lockstep_functions`]):
    /// per seed, the members still alive as one population; a member that
    /// fails at a seed fails alone (and trains no further seed, as one by
    /// one). Each member's result is its one-by-one result up to rounding's
    /// drift over training (within 1e-4 relative over a few steps; see the
    /// README's "Lockstep in the search") and carries `"population"` (the
    /// group's size) in its metrics.
    fn evaluate_group(&self, jobs: &[Job]) -> Vec<JobResult> {
        let start = Instant::now();
        let steps = crate::fitness::run::total_steps(&self.prep);
        let label = format!("{} candidates in lockstep", jobs.len());
        let progress = (self.observer.as_ref()).map(|o| o.job_started(&label, steps));
        let on_step = |i: &StepInfo| {
            if let Some(p) = &progress {
                p.step(i.step);
            }
        };
        let opts = RunOptions {
            on_step: Some(&on_step),
            ..RunOptions::default()
        };
        // Each member's outcomes so far, or its failure.
        let mut members: Vec<Seeds> = jobs.iter().map(|_| Ok(Vec::new())).collect();
        let seeds = jobs.first().map_or(&[][..], |j| &j.seeds[..]);
        for &seed in seeds {
            let alive: Vec<usize> = (0..jobs.len())
                .filter(|&i| members[i].is_ok() && jobs[i].seeds.contains(&seed))
                .collect();
            if alive.is_empty() {
                break;
            }
            if let Some(p) = &progress {
                p.seed_started(seed);
            }
            let group: Vec<(String, Arc<crate::diff::Function>)> = alive
                .iter()
                .map(|&i| {
                    (
                        jobs[i].candidate.text.clone(),
                        jobs[i].candidate.function.clone(),
                    )
                })
                .collect();
            match lockstep_functions(&self.prep, &group, seed, &self.candle, &opts) {
                Ok(outcomes) => {
                    for (&i, outcome) in alive.iter().zip(outcomes) {
                        match seed_failure(&outcome, seed) {
                            Some(why) => members[i] = Err((why, Some(Box::new(outcome)))),
                            None => {
                                if let Ok(list) = &mut members[i] {
                                    list.push(outcome);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    for &i in &alive {
                        members[i] = Err((format!("training failed (seed {seed}): {e}"), None));
                    }
                }
            }
        }
        let size = jobs.len();
        members
            .into_iter()
            .zip(jobs)
            .map(|(m, job)| {
                let mut r = job_result(job, m, start);
                r.metrics.insert("population".into(), json!(size));
                r
            })
            .collect()
    }
}

/// One line per run of the final comparison.
struct RetrainLines<'a>(&'a Training);

impl Progress for RetrainLines<'_> {
    fn run_started(&self, index: usize, total: usize, activation: &str, seed: u64, steps: u64) {
        self.0.say(&format!(
            "final retrain {index}/{total}: {activation}, seed {seed}, {steps} steps"
        ));
    }
    fn run_finished(&self, o: &Outcome) {
        let what = match o.fitness() {
            Some(f) => format!("fitness {f:.4}"),
            None => o.status.label(),
        };
        self.0.say(&format!(
            "  {what} ({:.1} s training, {:.1} s evaluation)",
            o.timing.train, o.timing.eval
        ));
    }
}

impl Retrain for Training {
    fn retrain(&self, entrants: &[Entrant], plan: &Plan, dir: &Path) -> Result<Retrained> {
        let seeds = &plan.seeds[..];
        let prep = self.final_data(plan.steps)?;
        crate::store::safe::real_dir(dir)?;
        // `actforge train --resume` could open this folder too: one
        // process at a time.
        let _lock = crate::store::Lock::dir(dir, "search (final retrain)")?;
        let exp = Experiment {
            recipe: prep.recipe.clone(),
            activations: entrants
                .iter()
                .map(|e| self.spec(e))
                .collect::<Result<_>>()?,
            seeds: seeds.to_vec(),
            device: self.device,
            checkpoint_every: 50,
            samples: 3,
            command: vec!["actforge search (final retrain)".into()],
            data: Some(prep.describe()),
        };
        // `config.json` as `actforge train` writes it, so that the folder
        // reads like any comparison and a resumed search finds its runs.
        let mut config = exp.to_json();
        config["versions"] = versions();
        write_json(&dir.join("config.json"), &config)?;
        let progress = RetrainLines(self);
        let acts: Vec<Activation> = entrants.iter().map(Training::entrant_activation).collect();
        let results = run_built_on(
            &exp,
            &acts,
            &prep,
            dir,
            &progress,
            None,
            self.final_workers(),
        )?;
        let results = entrants
            .iter()
            .enumerate()
            .map(|(a, e)| {
                let runs = seeds
                    .iter()
                    .map(|&s| {
                        results
                            .runs
                            .iter()
                            .find(|r| r["activation_index"] == json!(a) && r["seed"] == json!(s))
                            .filter(|r| r["status"] == "ok")
                            .and_then(|r| r["metrics"]["fitness"].as_f64())
                    })
                    .collect();
                let mut metrics = Map::new();
                if let Some(Value::Object(m)) = results.summary.get(a).map(|s| s.to_json()) {
                    metrics.extend(m.clone());
                }
                RetrainResult {
                    label: e.label.clone(),
                    // Named by what trains: candle's tanh GELU, not the
                    // prelude's exact `gelu(ARG0)`.
                    formula: if e.label == "gelu" {
                        GELU_LABEL.into()
                    } else {
                        e.candidate.text.clone()
                    },
                    runs,
                    metrics,
                }
            })
            .collect();
        Ok(Retrained {
            results,
            split: prep.holdout.split_name().into(),
            steps: Some(crate::fitness::run::total_steps(&prep)),
        })
    }
}
