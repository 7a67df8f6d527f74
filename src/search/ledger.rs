//! A run's fitness cache and the two logs it is kept in.
//!
//! Every settled candidate has one [`Record`] in the cache ([`Dedup`]); an
//! evaluated or screened one is a line of `evaluations.jsonl`, a
//! functional merge a line of `merges.jsonl`, each flushed and synced as
//! it is written. The checkpoint records how many lines of each it
//! accounts for; on resume ([`Ledger::load`]) the lines it accounts for
//! fill the cache, later evaluation lines are *recovered* results (the
//! interrupted generation takes them instead of evaluating again), and
//! later merge lines are dropped (the replayed generation logs them
//! again).
//!
//! With racing ([`super::racing`]) a trained candidate has one line per
//! seed: the ledger keeps them by (key, seed) in [`Trials`] and the cache
//! holds their [`Trials::summary`]; a line past the checkpoint is
//! recovered by (key, seed), so a resumed run takes every candidate-seed
//! already trained and trains none twice. A line without seeds (a screened
//! or unusable formula) is one record, as without racing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::store::files::{read_json_lines, write_atomic, JsonLog};

use super::dedup::Dedup;
use super::json::bad;
use super::run::dir::{CHECKPOINT, EVALUATIONS, MERGES};
use super::run::record::Record;
use super::run::state::State;
use super::trials::Trials;

/// The cache, the logs and the results recovered from them.
pub struct Ledger {
    dir: PathBuf,
    dedup: Dedup,
    /// Results logged past the checkpoint (by the generation that was
    /// running when the search stopped), by key.
    recovered: HashMap<u64, Record>,
    /// With racing: every trained key's single-seed lines (`None`: the
    /// run does not race).
    trials: Option<HashMap<u64, Trials>>,
    /// With racing: single-seed results logged past the checkpoint, by
    /// (key, seed).
    recovered_seeds: HashMap<(u64, u64), Record>,
    evaluations: JsonLog,
    merges: JsonLog,
    /// Lines in the logs now.
    lines: usize,
    merge_count: usize,
}

impl Ledger {
    /// The logs of the run in `dir` (created empty when missing), and an
    /// empty cache; `fingerprint`: whether the functional layer is on;
    /// `racing`: whether trained candidates are logged one seed a line.
    pub fn open(dir: &Path, fingerprint: bool, racing: bool) -> Result<Ledger> {
        Ok(Ledger {
            dir: dir.to_path_buf(),
            dedup: Dedup::new(fingerprint),
            recovered: HashMap::new(),
            trials: racing.then(HashMap::new),
            recovered_seeds: HashMap::new(),
            evaluations: JsonLog::open(&dir.join(EVALUATIONS))?,
            merges: JsonLog::open(&dir.join(MERGES))?,
            lines: 0,
            merge_count: 0,
        })
    }

    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

    pub fn dedup_mut(&mut self) -> &mut Dedup {
        &mut self.dedup
    }

    /// A result logged past the checkpoint, if `key` has one.
    pub fn recovered(&self, key: u64) -> Option<&Record> {
        self.recovered.get(&key)
    }

    /// How many results were recovered and not yet settled.
    pub fn recovered_count(&self) -> usize {
        self.recovered.len() + self.recovered_seeds.len()
    }

    /// Whether the run races (trained candidates are logged a seed a line).
    pub fn racing(&self) -> bool {
        self.trials.is_some()
    }

    /// With racing: the result of `key` at `seed` logged past the
    /// checkpoint, if any.
    pub fn recovered_seed(&self, key: u64, seed: u64) -> Option<&Record> {
        self.recovered_seeds.get(&(key, seed))
    }

    /// With racing: the single-seed results of `key` settled so far.
    pub fn trials(&self, key: u64) -> Option<&Trials> {
        self.trials.as_ref().and_then(|t| t.get(&key))
    }

    /// With racing: every key with settled single-seed results, in key
    /// order (a deterministic order for the race's sums).
    pub fn raced(&self) -> Vec<(u64, &Trials)> {
        let mut all: Vec<(u64, &Trials)> =
            self.trials.iter().flatten().map(|(&k, t)| (k, t)).collect();
        all.sort_unstable_by_key(|&(k, _)| k);
        all
    }

    /// With racing: settle one candidate-seed result (already logged, or
    /// recovered): it joins its key's trials and the cache takes their
    /// new summary. Refused (as a damaged run) when the seed is settled
    /// already or the run does not race.
    pub fn settle_seed(&mut self, line: Record) -> Result<()> {
        let shown = self.dir.join(EVALUATIONS).display().to_string();
        let Some(trials) = self.trials.as_mut() else {
            return Err(bad(
                &shown,
                format!(
                    "a single-seed result of {:016x} was settled in a run that does not race",
                    line.key
                ),
            ));
        };
        let key = line.key;
        if let [seed] = line.seeds[..] {
            self.recovered_seeds.remove(&(key, seed));
        }
        let t = trials.entry(key).or_default();
        t.add(line)
            .map_err(|e| bad(&shown, format!("{:016x}: {e}", key)))?;
        let summary = t.summary().expect("a seed was just added");
        self.dedup.insert(summary);
        Ok(())
    }

    /// Lines of `evaluations.jsonl` and `merges.jsonl` written so far (what
    /// the next checkpoint accounts for).
    pub fn lines(&self) -> (usize, usize) {
        (self.lines, self.merge_count)
    }

    /// Append an evaluated or screened record to `evaluations.jsonl`.
    pub fn log_evaluation(&mut self, r: &Record) -> Result<()> {
        self.evaluations.append(&r.to_json())?;
        self.lines += 1;
        Ok(())
    }

    /// Append the records of one group (a lockstep population) to
    /// `evaluations.jsonl` in one write: after a crash all of them are
    /// logged or none, so a resumed run trains a population whole or not
    /// at all (a member's bits depend on its companions).
    pub fn log_evaluations(&mut self, rs: &[Record]) -> Result<()> {
        let values: Vec<_> = rs.iter().map(Record::to_json).collect();
        self.evaluations.append_all(&values)?;
        self.lines += rs.len();
        Ok(())
    }

    /// Log the merge of `r` into `source` and put `r` in the cache.
    pub fn merge(&mut self, r: Record, source: &Record, distance: f32) -> Result<()> {
        self.merges.append(&r.merge_json(source, distance))?;
        self.merge_count += 1;
        self.dedup.insert(r);
        Ok(())
    }

    /// Put a settled record in the cache (it is no longer a recovered one).
    pub fn settle(&mut self, r: Record) {
        self.recovered.remove(&r.key);
        self.dedup.insert(r);
    }

    /// Rebuild the cache from the logs against the checkpoint's `state`
    /// (see the module docs); every member of its population must be
    /// recorded.
    pub fn load(&mut self, state: &State) -> Result<()> {
        let eval_path = self.dir.join(EVALUATIONS);
        let shown = eval_path.display().to_string();
        let lines = read_json_lines(&eval_path)?;
        let known = state.evaluation_lines;
        if lines.len() < known {
            return Err(bad(
                &shown,
                format!(
                    "has {} evaluations but the checkpoint accounts for {known}: the run directory was changed",
                    lines.len()
                ),
            ));
        }
        for (i, v) in lines.iter().enumerate() {
            let at = format!("{shown}:{}", i + 1);
            let r = Record::from_json(v, &at)?;
            let raced = self.trials.is_some() && !r.seeds.is_empty();
            match (raced, i < known) {
                (false, true) => self.dedup.insert(r),
                (false, false) => {
                    self.recovered.insert(r.key, r);
                }
                (true, true) => self.load_seed(r, &at)?,
                (true, false) => self.recover_seed(r, &at)?,
            }
        }
        self.lines = lines.len();
        self.load_merges(state.merge_lines)?;
        if let Some(i) = state
            .population
            .iter()
            .find(|i| !self.dedup.contains(i.key))
        {
            return Err(bad(
                &self.dir.join(CHECKPOINT).display().to_string(),
                format!(
                    "its population holds {:016x}, which the logs do not record",
                    i.key
                ),
            ));
        }
        Ok(())
    }

    /// A raced line the checkpoint accounts for: into its key's trials.
    fn load_seed(&mut self, r: Record, at: &str) -> Result<()> {
        let key = r.key;
        let trials = self.trials.as_mut().expect("only with racing");
        let t = trials.entry(key).or_default();
        t.add(r).map_err(|e| bad(at, e.to_string()))?;
        self.dedup
            .insert(t.summary().expect("a seed was just added"));
        Ok(())
    }

    /// A raced line past the checkpoint: recovered by (key, seed), once.
    fn recover_seed(&mut self, r: Record, at: &str) -> Result<()> {
        let &[seed] = &r.seeds[..] else {
            return Err(bad(
                at,
                crate::search::trials::Refused::NotOneSeed(r.seeds.len()).to_string(),
            ));
        };
        let known = self.trials(r.key).is_some_and(|t| t.has(seed));
        if known || self.recovered_seeds.contains_key(&(r.key, seed)) {
            return Err(bad(
                at,
                crate::search::trials::Refused::Twice(seed).to_string(),
            ));
        }
        self.recovered_seeds.insert((r.key, seed), r);
        Ok(())
    }

    fn load_merges(&mut self, known: usize) -> Result<()> {
        let path = self.dir.join(MERGES);
        let shown = path.display().to_string();
        let lines = read_json_lines(&path)?;
        if lines.len() < known {
            return Err(bad(
                &shown,
                format!(
                    "has {} merges but the checkpoint accounts for {known}: the run directory was changed",
                    lines.len()
                ),
            ));
        }
        for (i, v) in lines.iter().take(known).enumerate() {
            let m = Record::parse_merge(v, &format!("{shown}:{}", i + 1))?;
            let from = self.dedup.get(m.from).ok_or_else(|| {
                bad(
                    &format!("{shown}:{}", i + 1),
                    format!("merges into {:016x}, which is not recorded", m.from),
                )
            })?;
            let r = Record::merged(m.key, m.formula, m.simplified, m.nodes, m.generation, from);
            self.dedup.insert(r);
        }
        if lines.len() > known {
            let mut text = String::new();
            for v in &lines[..known] {
                text.push_str(&v.to_string());
                text.push('\n');
            }
            write_atomic(&path, text.as_bytes())?;
            self.merges = JsonLog::open(&path)?;
        }
        self.merge_count = known;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::objectives::Objectives;
    use crate::search::run::state::pareto_objectives;
    use serde_json::Map;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("actforge-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn line(key: u64, seed: Option<u64>, fitness: Option<f64>) -> Record {
        Record {
            key,
            formula: format!("f{key}"),
            simplified: None,
            nodes: 1,
            fitness,
            failure: fitness
                .is_none()
                .then(|| "screened: constant (varies by 0)".into()),
            metrics: Map::new(),
            generation: 0,
            seconds: 0.5,
            worker: 0,
            merged_from: None,
            seeds: seed.into_iter().collect(),
        }
    }

    fn state(lines: usize) -> State {
        let mut s = State::fresh(0, 3, &Objectives::maximize(), pareto_objectives());
        s.evaluation_lines = lines;
        s
    }

    /// Three candidate-seeds of key 1 (seeds 0, 2, 1), one of key 2, a
    /// screened key 3; the checkpoint accounts for the first four lines.
    fn write_run(dir: &Path) {
        let mut l = Ledger::open(dir, false, true).unwrap();
        for r in [
            line(1, Some(0), Some(0.5)),
            line(1, Some(2), Some(0.25)),
            line(2, Some(0), Some(0.125)),
            line(3, None, None),
            line(1, Some(1), Some(1.0)),
            line(2, Some(1), Some(0.375)),
        ] {
            l.log_evaluation(&r).unwrap();
        }
    }

    #[test]
    fn raced_lines_merge_by_key_and_recover_by_seed() {
        let dir = scratch("raced");
        write_run(&dir);
        let mut l = Ledger::open(&dir, false, true).unwrap();
        l.load(&state(4)).unwrap();
        let one = l.dedup().get(1).unwrap();
        assert_eq!(one.seeds, vec![0, 2]);
        assert_eq!(one.fitness, Some(0.375));
        assert_eq!(l.dedup().get(3).unwrap().fitness, None);
        assert_eq!(l.recovered_count(), 2);
        assert!(l.recovered_seed(1, 1).is_some());
        assert!(l.recovered_seed(1, 0).is_none());
        assert!(l.recovered(1).is_none());
        // Settling the recovered seed completes the summary, in seed order.
        let r = l.recovered_seed(1, 1).unwrap().clone();
        l.settle_seed(r.clone()).unwrap();
        assert_eq!(l.recovered_count(), 1);
        let one = l.dedup().get(1).unwrap();
        assert_eq!(one.seeds, vec![0, 1, 2]);
        assert_eq!(one.fitness, Some((0.5 + 1.0 + 0.25) / 3.0));
        assert_eq!(l.trials(1).unwrap().len(), 3);
        // ... and never twice.
        assert!(l.settle_seed(r).unwrap_err().to_string().contains("twice"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_seed_logged_twice_is_a_damaged_run() {
        let dir = scratch("twice");
        write_run(&dir);
        let mut l = Ledger::open(&dir, false, true).unwrap();
        l.log_evaluation(&line(2, Some(0), Some(0.125))).unwrap();
        let e = Ledger::open(&dir, false, true)
            .unwrap()
            .load(&state(4))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("evaluations.jsonl:7") && e.contains("twice"),
            "{e}"
        );
        let e = Ledger::open(&dir, false, true)
            .unwrap()
            .load(&state(7))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("evaluations.jsonl:7") && e.contains("twice"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_racing_a_key_is_one_line() {
        let dir = scratch("fixed");
        write_run(&dir);
        let mut l = Ledger::open(&dir, false, false).unwrap();
        l.load(&state(4)).unwrap();
        // The last line the checkpoint accounts for wins, as before racing.
        assert_eq!(l.dedup().get(1).unwrap().seeds, vec![2]);
        assert!(l.recovered(1).is_some() && l.recovered(2).is_some());
        assert!(l.trials(1).is_none());
        let r = line(1, Some(5), Some(0.5));
        assert!(l.settle_seed(r).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
