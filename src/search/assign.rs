//! Giving a generation's trees their fitness, cheapest way first:
//!
//! 1. every tree is simplified to its canonical key; a key already in the
//!    cache (or queued this generation) takes that fitness (canonical
//!    hit; its text is also checked against the texts seen, to count what
//!    syntactic dedup would have caught);
//! 2. a new key's [`Candidate`] is built (its canonical text parsed once);
//!    a new key whose functional fingerprint matches an earlier formula's
//!    takes that formula's fitness once it is known (functional hit,
//!    logged to `merges.jsonl`);
//! 3. the rest is screened ([`super::screen`]) and, on the GPU or with
//!    `--compile-check`, batch-compiled ([`super::compile`]); a rejected
//!    formula is a scored failure, logged like an evaluation;
//! 4. what is left is one batch of [`Job`]s for the executor; each result
//!    is logged (flushed and synced) as it arrives. Results already in the
//!    log from an interrupted run are taken instead of evaluating again.
//!
//! Records enter the cache ([`Ledger`]) in candidate order once the batch
//! is done, so the outcome does not depend on the order results arrived
//! in. Reads the run through [`Run`]; the engine's own fields stay its own.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::diff::Function;
use crate::error::{Error, Result};
use crate::gp::objectives::Objectives;
use crate::gp::{Canonical, PrimitiveSet, Tree};
use crate::ir::{to_infix_limited, to_prefix_limited};
use crate::op::population::register_generation;
use crate::op::FusedActivation;
use crate::simplify::hash_hex;

use super::candidate::Candidate;
use super::compile::{batch_compile, nvrtc_compile};
use super::config::{Objective, Settings};
use super::exec::executor::{Executor, Job, JobResult};
use super::ledger::Ledger;
use super::progress::Observer;
use super::run::dir::COMPILE_LOGS;
use super::run::logbook::{Counters, Timing};
use super::run::record::Record;
use super::run::state::Individual;
use super::screen::{screen, Reason};

/// Largest formula (as a tree) sent to evaluators in canonical prefix
/// form; larger ones are sent as the tree's own text.
pub const JOB_PRINT_NODES: u64 = 20_000;
/// Largest simplified formula written out in infix.
pub const SHOWN_NODES: u64 = 2_000;

/// What a generation's assignment reads of its run.
pub(super) struct Run<'a> {
    pub dir: &'a Path,
    pub settings: &'a Settings,
    pub set: &'a PrimitiveSet,
    pub objectives: &'a Objectives,
}

/// One new canonical key of the generation.
struct Entry {
    key: u64,
    formula: String,
    simplified: Option<String>,
    nodes: usize,
    kind: Kind,
}

enum Kind {
    Job(Candidate),
    /// Screened out or unusable: the failure text.
    Failed(String),
    Merge {
        from: u64,
        distance: f32,
    },
}

impl Entry {
    fn record(&self, g: usize, r: JobResult) -> Record {
        Record {
            key: self.key,
            formula: self.formula.clone(),
            simplified: self.simplified.clone(),
            nodes: self.nodes,
            fitness: r.fitness,
            failure: r.failure,
            metrics: r.metrics,
            generation: g,
            seconds: r.seconds,
            worker: r.worker,
            merged_from: None,
            seeds: Vec::new(),
        }
    }
}

/// The formula sent to evaluators: the canonical prefix form, or the
/// tree's text when that is too large to print.
pub fn job_formula(c: &Canonical, text: &str) -> String {
    to_prefix_limited(&c.expr.graph, c.expr.root, JOB_PRINT_NODES).unwrap_or_else(|| text.into())
}

/// The fitness vector of a record under the run's objectives.
pub(super) fn fitness_of(objective: Objective, objectives: &Objectives, r: &Record) -> Vec<f64> {
    match (r.fitness, objective) {
        (None, _) => objectives.worst(),
        (Some(f), Objective::Score) => vec![f],
        (Some(f), Objective::ScoreComplexity) => vec![f, r.nodes as f64],
    }
}

/// What the generation's assignment produced.
pub(super) type Assigned = (Vec<Individual>, Counters, Timing);

/// Give `trees` (generation `g`) their fitness (see the module docs);
/// `None` when the stop flag left jobs undone.
pub(super) fn assign(
    run: &Run,
    ledger: &mut Ledger,
    trees: Vec<Tree>,
    g: usize,
    exec: &mut dyn Executor,
    obs: &mut dyn Observer,
    stop: &AtomicBool,
) -> Result<Option<Assigned>> {
    let mut counters = Counters {
        offspring: trees.len(),
        ..Counters::default()
    };
    let mut timing = Timing::default();
    let t = Instant::now();
    let (keys, mut entries) = classify(run, ledger, &trees, &mut counters)?;
    timing.screen_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    compile_stage(run, ledger, &mut entries)?;
    timing.compile_seconds = t.elapsed().as_secs_f64();
    let Some(mut done) = execute(run, ledger, &entries, g, exec, obs, stop)? else {
        return Ok(None);
    };
    for e in &entries {
        settle(ledger, e, g, &mut done, &mut counters, &mut timing)?;
    }
    let individuals = trees
        .into_iter()
        .zip(keys)
        .map(|(tree, key)| {
            let r = ledger.dedup().get(key).expect("every key is settled");
            Individual {
                fitness: fitness_of(run.settings.objective, run.objectives, r),
                tree,
                key,
            }
        })
        .collect();
    Ok(Some((individuals, counters, timing)))
}

/// Keys of all trees, and the entries of the new keys (dedup layers and
/// screening applied). A new key's candidate is built here, once: its
/// canonical text is parsed with the set's library, and that expression
/// gives the fingerprint and the function that screening, the batch
/// compile and the evaluators take.
fn classify(
    run: &Run,
    ledger: &mut Ledger,
    trees: &[Tree],
    counters: &mut Counters,
) -> Result<(Vec<u64>, Vec<Entry>)> {
    let lib = run.set.library();
    let mut keys = Vec::with_capacity(trees.len());
    let mut entries: Vec<Entry> = Vec::new();
    let mut queued: HashMap<u64, usize> = HashMap::new();
    for tree in trees {
        let text = tree.to_formula(run.set);
        let dedup = ledger.dedup_mut();
        counters.syntactic += usize::from(dedup.see(&text));
        let c = tree.canonical(run.set).map_err(Error::from)?;
        keys.push(c.hash);
        if dedup.contains(c.hash) || queued.contains_key(&c.hash) {
            counters.canonical += 1;
            continue;
        }
        let formula = job_formula(&c, &text);
        let kind = match lib.parse(&formula) {
            Err(d) => Kind::Failed(format!("formula does not parse: {}", d.message)),
            Ok(expr) => match dedup.match_expr(c.hash, &expr, &formula) {
                Some((from, distance)) => {
                    counters.functional += 1;
                    Kind::Merge { from, distance }
                }
                None => screened(Candidate::new(c.hash, formula.clone(), &expr)),
            },
        };
        queued.insert(c.hash, entries.len());
        entries.push(Entry {
            key: c.hash,
            simplified: to_infix_limited(&c.expr.graph, c.expr.root, SHOWN_NODES),
            nodes: c.nodes(),
            formula,
            kind,
        });
    }
    Ok((keys, entries))
}

/// Batch-compile the jobs' kernels when the run trains on a GPU or asked
/// for it; a failing formula becomes a screened failure and its log is
/// kept in `compile_failures/`.
fn compile_stage(run: &Run, ledger: &Ledger, entries: &mut [Entry]) -> Result<()> {
    let s = run.settings;
    if !(s.compile_check || s.train.device.is_cuda()) {
        return Ok(());
    }
    let idx: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            matches!(entries[i].kind, Kind::Job(_)) && ledger.recovered(entries[i].key).is_none()
        })
        .collect();
    if idx.is_empty() {
        return Ok(());
    }
    let functions: Vec<&Function> = idx
        .iter()
        .map(|&i| match &entries[i].kind {
            Kind::Job(c) => &*c.function,
            _ => unreachable!("filtered to jobs"),
        })
        .collect();
    let arch = s.arch.0;
    let failures = batch_compile(&functions, &mut |fs: &[&Function]| nvrtc_compile(fs, arch))?;
    if failures.iter().all(Option::is_none) {
        // The generation's module compiled whole: lockstep populations of
        // its candidates load it (`op::population`), one compile a
        // generation.
        let formulas = idx
            .iter()
            .map(|&i| match &entries[i].kind {
                Kind::Job(c) => FusedActivation::from_function(&c.text, (*c.function).clone()),
                _ => unreachable!("filtered to jobs"),
            })
            .collect();
        register_generation(formulas);
    }
    for (i, failure) in idx.into_iter().zip(failures) {
        let Some(log) = failure else { continue };
        let dir = run.dir.join(COMPILE_LOGS);
        let path = dir.join(format!("{}.log", hash_hex(entries[i].key)));
        crate::store::safe::real_dir(&dir)?;
        crate::store::files::write_atomic(&path, log.as_bytes())?;
        let first = log.lines().next().unwrap_or("NVRTC failed").to_string();
        entries[i].kind = Kind::Failed(format!(
            "screened: {} ({first}; log in {COMPILE_LOGS}/{}.log)",
            Reason::Compile,
            hash_hex(entries[i].key)
        ));
    }
    Ok(())
}

/// Run the jobs (those not already recovered from the log); returns the
/// records of every job, or `None` when some were left undone.
fn execute(
    run: &Run,
    ledger: &mut Ledger,
    entries: &[Entry],
    g: usize,
    exec: &mut dyn Executor,
    obs: &mut dyn Observer,
    stop: &AtomicBool,
) -> Result<Option<HashMap<u64, Record>>> {
    let total = entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::Job(_)))
        .count();
    obs.generation_started(g, run.settings.gens, total);
    let mut done: HashMap<u64, Record> = HashMap::new();
    // With racing a new candidate first trains at the run's first seed,
    // and a result is recovered by (key, seed).
    let racing = run.settings.seeding.racing.is_some();
    let seeds = match racing {
        true => vec![run.settings.seed],
        false => run.settings.training_seeds(),
    };
    // Every job of the generation, recovered or not: the lockstep groups
    // are cut from all of them, so that a resumed generation trains what
    // is left in the populations the uninterrupted run used.
    let mut jobs = Vec::new();
    for e in entries {
        let Kind::Job(candidate) = &e.kind else {
            continue;
        };
        let recovered = match racing {
            true => ledger.recovered_seed(e.key, seeds[0]),
            false => ledger.recovered(e.key),
        };
        if let Some(r) = recovered {
            obs.candidate_done(r);
            done.insert(e.key, r.clone());
        }
        jobs.push(Job {
            candidate: candidate.clone(),
            seeds: seeds.clone(),
        });
    }
    let groups = run
        .settings
        .lockstep
        .groups(jobs, |j| done.contains_key(&j.key()));
    let by_key: HashMap<u64, &Entry> = entries.iter().map(|e| (e.key, e)).collect();
    if !groups.is_empty() && !stop.load(std::sync::atomic::Ordering::SeqCst) {
        exec.run_groups(groups, &mut |results: Vec<JobResult>| {
            let mut records = Vec::with_capacity(results.len());
            for result in results {
                let Some(e) = by_key.get(&result.key) else {
                    return Err(Error::Internal(format!(
                        "the executor returned a result for {}, which was not asked for",
                        hash_hex(result.key)
                    )));
                };
                let mut r = e.record(g, result);
                r.seeds = seeds.clone();
                records.push(r);
            }
            // A group's lines in one write (see `log_evaluations`).
            ledger.log_evaluations(&records)?;
            for r in records {
                obs.candidate_done(&r);
                done.insert(r.key, r);
            }
            Ok(())
        })?;
    }
    Ok((done.len() == total).then_some(done))
}

/// Put one entry's record into the cache (in candidate order), log
/// screened failures and merges, and count it.
fn settle(
    ledger: &mut Ledger,
    e: &Entry,
    g: usize,
    done: &mut HashMap<u64, Record>,
    counters: &mut Counters,
    timing: &mut Timing,
) -> Result<()> {
    let record = match &e.kind {
        Kind::Job(_) if ledger.racing() => {
            // Racing: one candidate-seed joins the key's trials.
            let r = done.remove(&e.key).expect("every job is done");
            counters.evaluations += 1;
            counters.failures += usize::from(r.fitness.is_none());
            timing.eval_seconds += r.seconds;
            return ledger.settle_seed(r);
        }
        Kind::Job(_) => done.remove(&e.key).expect("every job is done"),
        Kind::Failed(why) => match ledger.recovered(e.key) {
            Some(r) => r.clone(),
            None => {
                let r = e.record(g, JobResult::failed(e.key, why.clone()));
                ledger.log_evaluation(&r)?;
                r
            }
        },
        Kind::Merge { from, distance } => {
            let source = ledger
                .dedup()
                .get(*from)
                .expect("a merge's source is settled before it")
                .clone();
            let r = Record::merged(
                e.key,
                e.formula.clone(),
                e.simplified.clone(),
                e.nodes,
                g,
                &source,
            );
            return ledger.merge(r, &source, *distance);
        }
    };
    match record.screened() {
        Some(reason) => counters.screen(reason),
        None => {
            counters.evaluations += 1;
            counters.failures += usize::from(record.fitness.is_none());
            timing.eval_seconds += record.seconds;
        }
    }
    ledger.settle(record);
    Ok(())
}

/// Screen a new candidate: a job, or a failure with the reason.
fn screened(candidate: Candidate) -> Kind {
    match screen(&candidate.function) {
        Some(v) => Kind::Failed(v.failure()),
        None => Kind::Job(candidate),
    }
}
