//! A generation's racing rounds (see [`super::racing`] for the rule and
//! [`super::rung`] for what a rung asks): the baseline's seeds and the
//! rungs, trained through the executor one candidate at one seed.
//!
//! Order of a raced generation: the baseline is trained at the run's first
//! seed if it is not cached yet ([`baseline_first`]); the generation's new
//! candidates train at that seed (the first pass, [`super::assign`]); then
//! rung after rung ([`rungs`]) the race picks the candidate-seeds to train,
//! with the baseline's missing seeds, until it asks for nothing more. Each
//! rung is a barrier: its results settle in (key, seed) order before the
//! next is chosen, so the run depends only on its seed, never on the
//! number of workers or the order results arrive in. Within a rung, one
//! batch per seed (a key appears at most once in a batch, and the
//! candidates of one seed can become one job).
//!
//! Every candidate-seed is logged (one line, `"seeds": [seed]`) as it
//! arrives; after a crash the replayed generation takes the lines already
//! logged (recovered by key and seed) and makes the same calls again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::gp::objectives::Objectives;
use crate::gp::{Canonical, PrimitiveSet};
use crate::ir::to_infix_limited;
use crate::simplify::hash_hex;

use super::assign::{job_formula, SHOWN_NODES};
use super::candidate::Candidate;
use super::config::{Objective, Settings};
use super::exec::executor::{Executor, Job, JobResult};
use super::ledger::Ledger;
use super::progress::Observer;
use super::run::logbook::Counters;
use super::run::record::Record;
use super::rung::{baseline_missing, next_rung, selection_value};

/// The baseline the race compares with: GELU as the standard prelude
/// defines it (exact erf), trained like a candidate.
pub const BASELINE: &str = "gelu(ARG0)";

/// A candidate-seed to train, with what its line records.
struct SeedJob {
    candidate: Candidate,
    formula: String,
    simplified: Option<String>,
    nodes: usize,
    seed: u64,
}

impl SeedJob {
    fn record(&self, g: usize, r: JobResult) -> Record {
        Record {
            key: self.candidate.key,
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
            seeds: vec![self.seed],
        }
    }
}

/// What the rounds read of the run and drive.
pub(super) struct Rounds<'a> {
    pub settings: &'a Settings,
    pub set: &'a PrimitiveSet,
    pub generation: usize,
}

/// The baseline's key (its canonical hash, as if it were a tree).
pub fn baseline_key(set: &PrimitiveSet) -> Result<u64> {
    Ok(Canonical::parse(BASELINE, set.library())
        .map_err(Error::from)?
        .hash)
}

impl Rounds<'_> {
    /// The baseline's job at `seed`.
    fn baseline_job(&self, seed: u64) -> Result<SeedJob> {
        let lib = self.set.library();
        let c = Canonical::parse(BASELINE, lib).map_err(Error::from)?;
        let formula = job_formula(&c, BASELINE);
        Ok(SeedJob {
            candidate: Candidate::parse(c.hash, &formula, lib).map_err(Error::from)?,
            simplified: to_infix_limited(&c.expr.graph, c.expr.root, SHOWN_NODES),
            nodes: c.nodes(),
            formula,
            seed,
        })
    }

    /// The job of a cached candidate at `seed` (its candidate rebuilt from
    /// the formula it was logged with, as a worker process does).
    fn cached_job(&self, ledger: &Ledger, key: u64, seed: u64) -> Result<SeedJob> {
        let r = ledger
            .dedup()
            .get(key)
            .ok_or_else(|| Error::Internal(format!("{} is not cached", hash_hex(key))))?;
        Ok(SeedJob {
            candidate: Candidate::parse(key, &r.formula, self.set.library())
                .map_err(Error::from)?,
            formula: r.formula.clone(),
            simplified: r.simplified.clone(),
            nodes: r.nodes,
            seed,
        })
    }

    /// Train the baseline at the run's first seed unless it is cached;
    /// `false` when the stop flag left it undone.
    pub fn baseline_first(
        &self,
        ledger: &mut Ledger,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
        counters: &mut Counters,
    ) -> Result<bool> {
        let key = baseline_key(self.set)?;
        let seed = self.settings.seed;
        let missing = baseline_missing(ledger.trials(key), seed, 1)?;
        let jobs = missing
            .into_iter()
            .map(|s| self.baseline_job(s))
            .collect::<Result<Vec<_>>>()?;
        self.train(ledger, jobs, exec, obs, stop, counters)
    }

    /// Run rungs until the race asks for nothing more; `eligible`: the keys
    /// that may earn seeds. `false` when the stop flag cut it short.
    pub fn rungs(
        &self,
        ledger: &mut Ledger,
        eligible: &HashSet<u64>,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
        counters: &mut Counters,
    ) -> Result<bool> {
        let base = baseline_key(self.set)?;
        let max_seeds = self.settings.max_training_seeds();
        let first = self.settings.seed;
        loop {
            let asked = next_rung(&ledger.raced(), base, eligible, first, max_seeds);
            if asked.is_empty() {
                return Ok(true);
            }
            let deepest = asked
                .iter()
                .map(|&(_, s)| s.wrapping_sub(first) as usize + 1)
                .max()
                .unwrap_or(0);
            let mut jobs = Vec::new();
            for s in baseline_missing(ledger.trials(base), first, deepest)? {
                jobs.push(self.baseline_job(s)?);
            }
            for (key, seed) in asked {
                jobs.push(self.cached_job(ledger, key, seed)?);
            }
            if !self.train(ledger, jobs, exec, obs, stop, counters)? {
                return Ok(false);
            }
        }
    }

    /// Train `jobs` (taking results already logged), one batch per seed in
    /// seed order, and settle them in (key, seed) order; `false` when the
    /// stop flag left some undone (those settled stay settled).
    fn train(
        &self,
        ledger: &mut Ledger,
        jobs: Vec<SeedJob>,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
        counters: &mut Counters,
    ) -> Result<bool> {
        let mut by_seed: BTreeMap<u64, Vec<SeedJob>> = BTreeMap::new();
        for j in jobs {
            by_seed.entry(j.seed).or_default().push(j);
        }
        let g = self.generation;
        for (seed, batch) in by_seed {
            // Each batch gets its own progress bar within the generation.
            obs.seed_batch_started(g, self.settings.gens, seed, batch.len());
            let mut done: BTreeMap<u64, Record> = BTreeMap::new();
            // Every job of the batch, recovered or not: the lockstep
            // groups are cut from all of them (see `Lockstep::groups`).
            let mut all = Vec::new();
            for j in &batch {
                if let Some(r) = ledger.recovered_seed(j.candidate.key, seed) {
                    obs.candidate_done(r);
                    done.insert(j.candidate.key, r.clone());
                }
                all.push(Job {
                    candidate: j.candidate.clone(),
                    seeds: vec![seed],
                });
            }
            let groups = self
                .settings
                .lockstep
                .groups(all, |j| done.contains_key(&j.key()));
            let by_key: HashMap<u64, &SeedJob> =
                batch.iter().map(|j| (j.candidate.key, j)).collect();
            if !groups.is_empty() && !stop.load(Ordering::SeqCst) {
                exec.run_groups(groups, &mut |results: Vec<JobResult>| {
                    let mut records = Vec::with_capacity(results.len());
                    for result in results {
                        let Some(j) = by_key.get(&result.key) else {
                            return Err(Error::Internal(format!(
                                "the executor returned a result for {}, which was not asked for",
                                hash_hex(result.key)
                            )));
                        };
                        records.push(j.record(g, result));
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
            let complete = done.len() == batch.len();
            for (_, r) in done {
                counters.evaluations += 1;
                counters.failures += usize::from(r.fitness.is_none());
                ledger.settle_seed(r)?;
            }
            if !complete {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A raced run's fitness vector of `key`: its selection value (the mean
/// paired difference from the baseline, of the key it took its results
/// from when it is a functional merge), with the size under the
/// complexity objective; the failure's vector when it has none.
pub(super) fn raced_fitness(
    ledger: &Ledger,
    base: u64,
    objective: Objective,
    objectives: &Objectives,
    key: u64,
) -> Vec<f64> {
    let Some(r) = ledger.dedup().get(key) else {
        return objectives.worst();
    };
    let source = r.merged_from.unwrap_or(key);
    let value = ledger
        .trials(source)
        .zip(ledger.trials(base))
        .and_then(|(t, b)| selection_value(t, b));
    match (value, objective) {
        (None, _) => objectives.worst(),
        (Some(v), Objective::Score) => vec![v],
        (Some(v), Objective::ScoreComplexity) => vec![v, r.nodes as f64],
    }
}
