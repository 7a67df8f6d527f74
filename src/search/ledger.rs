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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::store::files::{read_json_lines, write_atomic, JsonLog};

use super::dedup::Dedup;
use super::json::bad;
use super::run::dir::{CHECKPOINT, EVALUATIONS, MERGES};
use super::run::record::Record;
use super::run::state::State;

/// The cache, the logs and the results recovered from them.
pub struct Ledger {
    dir: PathBuf,
    dedup: Dedup,
    /// Results logged past the checkpoint (by the generation that was
    /// running when the search stopped), by key.
    recovered: HashMap<u64, Record>,
    evaluations: JsonLog,
    merges: JsonLog,
    /// Lines in the logs now.
    lines: usize,
    merge_count: usize,
}

impl Ledger {
    /// The logs of the run in `dir` (created empty when missing), and an
    /// empty cache; `fingerprint`: whether the functional layer is on.
    pub fn open(dir: &Path, fingerprint: bool) -> Result<Ledger> {
        Ok(Ledger {
            dir: dir.to_path_buf(),
            dedup: Dedup::new(fingerprint),
            recovered: HashMap::new(),
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
        self.recovered.len()
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
            let r = Record::from_json(v, &format!("{shown}:{}", i + 1))?;
            if i < known {
                self.dedup.insert(r);
            } else {
                self.recovered.insert(r.key, r);
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
