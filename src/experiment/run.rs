//! Running an experiment: every (activation, seed) run in a run directory,
//! skipping the finished ones and resuming the unfinished one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::files::write_outputs;
use super::results::{fitness_shares, summarize_runs, Results};
use super::spec::{check_data, parse_activation, Experiment};
use crate::error::{Error, Result};
use crate::fitness::run::{run, CheckpointPlan, Outcome, RunOptions, Status, StepInfo};
use crate::fitness::Prepared;
use crate::metrics::FITNESS_FLOOR;
use crate::op::Activation;
use crate::store::files::{read_json_lines, JsonLog};
use crate::store::safe::{real_dir, refuse_link};

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
    let acts: Vec<Activation> = exp
        .activations
        .iter()
        .map(|s| parse_activation(s))
        .collect::<Result<_>>()?;
    run_built(exp, &acts, prep, out, progress, stop)
}

/// [`run_experiment`] with the activations already built (one per spec
/// of `exp.activations`, in order): the search's final retrain hands over
/// the candidates it built, and the specs are only recorded.
pub fn run_built(
    exp: &Experiment,
    acts: &[Activation],
    prep: &Prepared,
    out: &Path,
    progress: &dyn Progress,
    stop: Option<&AtomicBool>,
) -> Result<Results> {
    run_built_on(exp, acts, prep, out, progress, stop, 1)
}

/// What the runs of [`run_built_on`] share: the log and what is done.
struct Ledger {
    log: JsonLog,
    done: Vec<Value>,
    interrupted: bool,
    error: Option<Error>,
}

/// [`run_built`] with up to `workers` runs at once (threads over one queue
/// of (activation, seed) runs in order). A run's result does not depend on
/// the others, so `results.json` is the same for any `workers`; only the
/// order of `runs.jsonl`'s lines may differ.
pub fn run_built_on(
    exp: &Experiment,
    acts: &[Activation],
    prep: &Prepared,
    out: &Path,
    progress: &dyn Progress,
    stop: Option<&AtomicBool>,
    workers: usize,
) -> Result<Results> {
    assert_eq!(acts.len(), exp.activations.len(), "one activation per spec");
    let device = exp.device.open()?;
    check_data(exp, prep, &out.join("config.json"))?;
    let log_path = out.join("runs.jsonl");
    let done: Vec<Value> = read_json_lines(&log_path)?;
    let log = JsonLog::open(&log_path)?;
    real_dir(&out.join("checkpoints"))?;
    let total = acts.len() * exp.seeds.len();
    let pending: Vec<(usize, usize, u64)> = exp
        .seeds
        .iter()
        .flat_map(|&s| (0..acts.len()).map(move |a| (a, s)))
        .enumerate()
        .filter(|(_, (a, s))| find_run(&done, *a, *s).is_none())
        .map(|(i, (a, s))| (i + 1, a, s))
        .collect();
    let shared = Mutex::new(Ledger {
        log,
        done,
        interrupted: false,
        error: None,
    });
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(&(index, a, seed)) = pending.get(i) else {
            return;
        };
        {
            let l = shared.lock().unwrap_or_else(|e| e.into_inner());
            if l.interrupted || l.error.is_some() {
                return;
            }
        }
        let result = one_run(
            exp,
            acts,
            prep,
            out,
            progress,
            stop,
            &device,
            (index, total, a, seed),
        );
        let mut l = shared.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(e) => {
                l.error.get_or_insert(e);
                return;
            }
            Ok(None) => {
                l.interrupted = true;
                return;
            }
            Ok(Some(line)) => {
                if let Err(e) = l.log.append(&line) {
                    l.error.get_or_insert(e);
                    return;
                }
                l.done.push(line);
            }
        }
        drop(l);
        let _ = std::fs::remove_dir_all(run_dir(out, a, seed));
    };
    let n = workers.clamp(1, pending.len().max(1));
    if n == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(work);
            }
        });
    }
    let Ledger {
        done,
        interrupted,
        error,
        ..
    } = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = error {
        return Err(e);
    }
    let runs: Vec<Value> = exp
        .seeds
        .iter()
        .flat_map(|&s| (0..acts.len()).map(move |a| (a, s)))
        .filter_map(|(a, s)| find_run(&done, a, s).cloned())
        .collect();
    let summary = summarize_runs(exp, &runs);
    let fitness_shares = fitness_shares(&runs, &prep.recipe.weights, prep.vocab());
    let results = Results {
        experiment: exp.clone(),
        runs,
        summary,
        fitness_shares,
        interrupted,
    };
    if !interrupted {
        // Each finished run removed its checkpoints; drop the empty folder.
        let _ = std::fs::remove_dir(out.join("checkpoints"));
        write_outputs(&results, prep, out)?;
    }
    Ok(results)
}

/// Run (`a`, `seed`), number `index` of `total`: its `runs.jsonl` line, or
/// `None` when it was interrupted (its checkpoint kept).
#[allow(clippy::too_many_arguments)]
fn one_run(
    exp: &Experiment,
    acts: &[Activation],
    prep: &Prepared,
    out: &Path,
    progress: &dyn Progress,
    stop: Option<&AtomicBool>,
    device: &candle_core::Device,
    (index, total, a, seed): (usize, usize, usize, u64),
) -> Result<Option<Value>> {
    // A checkpoint folder planted as a link would be read through.
    refuse_link(&run_dir(out, a, seed))?;
    let steps = crate::fitness::run::total_steps(prep);
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
    let outcome = run(prep, &acts[a], seed, device, &opts)?;
    progress.run_finished(&outcome);
    if matches!(outcome.status, Status::Interrupted { .. }) {
        return Ok(None);
    }
    let mut line = outcome.to_json();
    line["activation"] = json!(exp.activations[a]);
    line["activation_index"] = json!(a);
    if outcome.eval.is_none() {
        // Nothing was measured; the statistics count the failure at the
        // fitness floor, and the line says so.
        line["metrics"] = json!({ "fitness": FITNESS_FLOOR });
    }
    Ok(Some(line))
}

fn find_run(done: &[Value], a: usize, seed: u64) -> Option<&Value> {
    done.iter()
        .find(|r| r["activation_index"] == json!(a) && r["seed"] == json!(seed))
}
