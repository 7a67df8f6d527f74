//! The engine's side of the race ([`super::racing`]): paired differences
//! from the run's cached baseline, the selection value, and which
//! candidate-seeds the next rung trains.
//!
//! The baseline is a candidate like any other (its canonical key, its
//! lines in `evaluations.jsonl`, one per seed), trained once per seed and
//! then read from the cache. A raced candidate's seeds are always the
//! first `n` training seeds `seed, seed + 1, …` ([`seed_at`]), so every
//! candidate shares its seeds with the baseline and with every other
//! candidate at those seeds (common random numbers).
//!
//! Everything here reads settled results only, in key order: what a rung
//! trains is a function of the results, never of which worker finished
//! first.

use std::collections::HashSet;

use crate::error::{Error, Result, Setting};
use crate::metrics::FITNESS_FLOOR;

use super::racing::{race, Call, Entrant};
use super::trials::Trials;

/// The `i`-th training seed of a run seeded with `first`.
pub fn seed_at(first: u64, i: usize) -> u64 {
    first.wrapping_add(i as u64)
}

/// A candidate's paired differences from the baseline, in seed order (a
/// failed seed counts at [`FITNESS_FLOOR`]), and whether a seed failed;
/// `None` when the baseline has no value at one of its seeds.
pub fn paired(t: &Trials, base: &Trials) -> Option<(Vec<f64>, bool)> {
    let mut failed = false;
    let mut diffs = Vec::with_capacity(t.len());
    for (seed, v) in t.values() {
        let b = base.at(seed)??;
        failed |= v.is_none();
        diffs.push(v.unwrap_or(FITNESS_FLOOR) - b);
    }
    Some((diffs, failed))
}

/// What selection reads of a raced candidate: its mean paired difference
/// from the baseline (summed in seed order); `None` when a seed failed
/// (a failure's fitness) or the baseline lacks one of its seeds.
pub fn selection_value(t: &Trials, base: &Trials) -> Option<f64> {
    let (diffs, failed) = paired(t, base)?;
    (!failed && !diffs.is_empty()).then(|| diffs.iter().sum::<f64>() / diffs.len() as f64)
}

/// The seeds the baseline lacks among `first`'s first `n`, or why it
/// cannot serve: a failed baseline seed ends the race (nothing can be
/// compared at that seed).
pub fn baseline_missing(base: Option<&Trials>, first: u64, n: usize) -> Result<Vec<u64>> {
    let mut missing = Vec::new();
    for i in 0..n {
        let seed = seed_at(first, i);
        match base.and_then(|b| b.at(seed)) {
            None => missing.push(seed),
            Some(Some(_)) => {}
            Some(None) => {
                // Not a refused setting (racing is sound; training failed):
                // a failure, exit status 1, naming the setting by its key.
                return Err(Error::Failed(format!(
                    "the baseline (GELU) failed to train at seed {seed}, so no candidate can be compared with it there: see its line in evaluations.jsonl, or search with fixed seeds (leave `{}` unset: no racing)",
                    Setting::MaxSeeds.key()
                )));
            }
        }
    }
    Ok(missing)
}

/// The candidate-seeds (key, seed) the next rung trains, in (key, seed)
/// order: every raced candidate but the baseline enters the race (in key
/// order); those it sends on and that are `eligible` get the seeds from
/// their count up to the rung. Empty when the race is over for now.
pub fn next_rung(
    raced: &[(u64, &Trials)],
    baseline: u64,
    eligible: &HashSet<u64>,
    first: u64,
    max_seeds: usize,
) -> Vec<(u64, u64)> {
    let Some(base) = raced.iter().find(|(k, _)| *k == baseline).map(|e| e.1) else {
        return Vec::new();
    };
    let rows: Vec<(u64, usize, Vec<f64>, bool)> = raced
        .iter()
        .filter(|(k, _)| *k != baseline)
        .filter_map(|&(k, t)| paired(t, base).map(|(d, failed)| (k, t.len(), d, failed)))
        .collect();
    let entrants: Vec<Entrant> = rows
        .iter()
        .map(|(k, _, d, failed)| Entrant {
            diffs: d,
            failed: *failed,
            eligible: eligible.contains(k),
        })
        .collect();
    let (_, calls) = race(&entrants, max_seeds);
    let mut jobs = Vec::new();
    for ((k, n, _, _), call) in rows.iter().zip(calls) {
        if let Call::More(to) = call {
            jobs.extend((*n..to).map(|i| (*k, seed_at(first, i))));
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::run::record::Record;
    use serde_json::Map;

    fn trials(key: u64, first: u64, values: &[Option<f64>]) -> Trials {
        let mut t = Trials::new();
        for (i, v) in values.iter().enumerate() {
            t.add(Record {
                key,
                formula: format!("f{key}"),
                simplified: None,
                nodes: 1,
                fitness: *v,
                failure: v.is_none().then(|| "diverged".into()),
                metrics: Map::new(),
                generation: 0,
                seconds: 0.0,
                worker: 0,
                merged_from: None,
                seeds: vec![seed_at(first, i)],
            })
            .unwrap();
        }
        t
    }

    #[test]
    fn differences_are_taken_at_the_same_seeds() {
        let base = trials(0, 10, &[Some(0.5), Some(0.25), Some(0.75)]);
        let c = trials(1, 10, &[Some(0.625), Some(0.25)]);
        assert_eq!(paired(&c, &base), Some((vec![0.125, 0.0], false)));
        assert_eq!(selection_value(&c, &base), Some(0.0625));
        // A failed seed scores the floor and fails the candidate.
        let f = trials(2, 10, &[Some(0.5), None]);
        assert_eq!(
            paired(&f, &base),
            Some((vec![0.0, FITNESS_FLOOR - 0.25], true))
        );
        assert_eq!(selection_value(&f, &base), None);
        // The baseline lacks seed 13.
        let long = trials(3, 10, &[Some(0.5); 4]);
        assert_eq!(paired(&long, &base), None);
    }

    #[test]
    fn the_baseline_is_trained_once_per_seed() {
        let base = trials(0, 10, &[Some(0.5), Some(0.25)]);
        assert_eq!(baseline_missing(Some(&base), 10, 4).unwrap(), vec![12, 13]);
        assert_eq!(baseline_missing(None, 10, 2).unwrap(), vec![10, 11]);
        assert!(baseline_missing(Some(&base), 10, 1).unwrap().is_empty());
        let failed = trials(0, 10, &[Some(0.5), None]);
        let e = baseline_missing(Some(&failed), 10, 2).unwrap_err();
        assert!(e.to_string().contains("seed 11"), "{e}");
        // Training failed: not a refused setting (exit status 1), and the
        // message names racing's setting by its key.
        assert!(matches!(e, Error::Failed(_)), "{e:?}");
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("`max_seeds`"), "{e}");
    }

    #[test]
    fn a_rung_asks_for_the_seeds_up_to_the_next_rung() {
        // σ unknown (every candidate has one seed): all alive and eligible
        // ones get their second seed; the failed one and the ineligible one
        // do not; the baseline is not a contender.
        let base = trials(0, 10, &[Some(0.5), Some(0.5)]);
        let a = trials(5, 10, &[Some(0.6)]);
        let b = trials(7, 10, &[Some(0.4)]);
        let dead = trials(8, 10, &[None]);
        let old = trials(9, 10, &[Some(0.7)]);
        let raced = [(0, &base), (5, &a), (7, &b), (8, &dead), (9, &old)];
        let eligible: HashSet<u64> = [5, 7, 8].into();
        assert_eq!(
            next_rung(&raced, 0, &eligible, 10, 4),
            vec![(5, 11), (7, 11)]
        );
        // Two seeds each: σ is known; 4 seeds is the next rung.
        let base = trials(0, 10, &[Some(0.5); 4]);
        let a = trials(5, 10, &[Some(0.60), Some(0.62)]);
        let b = trials(7, 10, &[Some(0.40), Some(0.42)]);
        let c = trials(6, 10, &[Some(0.59), Some(0.61)]);
        let raced = [(0, &base), (5, &a), (6, &c), (7, &b)];
        let eligible: HashSet<u64> = [5, 6, 7].into();
        // σ = 0.0141, h(2) = 0.02: a's lower bound 0.09 is the bar; c's
        // upper bound 0.12 reaches it, b's (−0.07) does not.
        assert_eq!(
            next_rung(&raced, 0, &eligible, 10, 4),
            vec![(5, 12), (5, 13), (6, 12), (6, 13)]
        );
        // At max_seeds 2 everyone is full; without a baseline, no race.
        assert!(next_rung(&raced, 0, &eligible, 10, 2).is_empty());
        assert!(next_rung(&raced[1..], 0, &eligible, 10, 4).is_empty());
    }
}
