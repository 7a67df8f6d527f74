//! The engine's state between generations and its checkpoint
//! (`checkpoint.json`, replaced atomically after every generation).
//!
//! The checkpoint holds everything that is not in the append-only logs:
//! the generation, the generator's state, the population (trees, keys,
//! fitnesses), the hall of fame and Pareto archive, the logbook, the
//! run's counters, the dedup layers' memory (texts seen; fingerprint
//! representatives in order) and how many lines of `evaluations.jsonl`
//! and `merges.jsonl` it accounts for. Lines past those counts were
//! written by the generation that was running when the search stopped;
//! a resumed run takes their results instead of evaluating again.
//!
//! JSON: `{"format": "actforge-search-checkpoint", "version", "settings_hash",
//! "status": "running"|"interrupted"|"finished", "next_generation", "rng",
//! "population": [{"tree", "hash", "fitness"}], "hall_of_fame": [same],
//! "pareto": [same], "logbook": [rows], "totals": {counters},
//! "seen": [hash…], "functions": [[hash, formula]…], "evaluation_lines",
//! "merge_lines", "elapsed_seconds"}`.

use serde_json::{json, Value};

use crate::error::Result;
use crate::gp::{PrimitiveSet, Prng, Tree};
use crate::simplify::hash_hex;

use super::logbook::{Counters, Row};
use crate::gp::archive::{HallOfFame, ParetoFront};
use crate::gp::objectives::Objectives;
use crate::search::json::{bad, num, parse_hash, Fields};

pub const CHECKPOINT_FORMAT: &str = "actforge-search-checkpoint";
pub const CHECKPOINT_VERSION: u64 = 1;

/// One member of the population.
#[derive(Clone, Debug, PartialEq)]
pub struct Individual {
    pub tree: Tree,
    /// Canonical hash of its formula.
    pub key: u64,
    /// One value per objective; a failure has [`Objectives::worst`].
    pub fitness: Vec<f64>,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    /// Stopped by Ctrl-C after a checkpoint.
    Interrupted,
    /// Every generation and the final stages are done.
    Finished,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Finished => "finished",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Running, Status::Interrupted, Status::Finished]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// Everything between generations.
pub struct State {
    /// The next generation to run (0: the initial population).
    pub next_gen: usize,
    pub rng: Prng,
    pub population: Vec<Individual>,
    pub hof: HallOfFame<Tree>,
    /// Every non-dominated (fitness, nodes) pair seen, whatever the
    /// search's own objectives.
    pub pareto: ParetoFront<Tree>,
    pub logbook: Vec<Row>,
    pub totals: Counters,
    pub evaluation_lines: usize,
    pub merge_lines: usize,
    pub elapsed: f64,
}

/// The dedup layers' part of a checkpoint.
pub struct DedupMemory {
    pub seen: Vec<u64>,
    pub functions: Vec<(u64, String)>,
}

fn member_json(tree: &Tree, key: u64, fitness: &[f64]) -> Value {
    json!({
        "tree": tree.to_json(),
        "hash": hash_hex(key),
        "fitness": fitness.iter().map(|&f| num(f)).collect::<Vec<_>>(),
    })
}

/// Read a member; a `null` fitness value is that objective's worst.
fn member(v: &Value, file: &str, set: &PrimitiveSet, o: &Objectives) -> Result<Individual> {
    let f = Fields::of(v, file, "an individual")?;
    let tree = Tree::from_json(f.get("tree")?, set).map_err(|e| bad(file, e))?;
    let worst = o.worst();
    let values = f.array("fitness")?;
    if values.len() != o.len() {
        return Err(bad(
            file,
            format!(
                "a fitness has {} values; the run has {} objectives",
                values.len(),
                o.len()
            ),
        ));
    }
    let fitness = values
        .iter()
        .zip(&worst)
        .map(|(v, w)| match v {
            Value::Null => Ok(*w),
            other => other
                .as_f64()
                .ok_or_else(|| bad(file, "a fitness value is not a number".into())),
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(Individual {
        tree,
        key: f.hash("hash")?,
        fitness,
    })
}

impl State {
    /// A run before its first generation.
    pub fn fresh(seed: u64, hof: usize, objectives: &Objectives, pareto: Objectives) -> State {
        State {
            next_gen: 0,
            rng: Prng::seed(seed),
            population: Vec::new(),
            hof: HallOfFame::new(hof, objectives.clone()),
            pareto: ParetoFront::new(pareto),
            logbook: Vec::new(),
            totals: Counters::default(),
            evaluation_lines: 0,
            merge_lines: 0,
            elapsed: 0.0,
        }
    }

    /// The checkpoint JSON.
    pub fn to_json(&self, settings_hash: &str, status: Status, memory: &DedupMemory) -> Value {
        let pop: Vec<Value> = self
            .population
            .iter()
            .map(|i| member_json(&i.tree, i.key, &i.fitness))
            .collect();
        let hof: Vec<Value> = self
            .hof
            .entries()
            .iter()
            .map(|e| member_json(&e.item, e.key, &e.fitness))
            .collect();
        let pareto: Vec<Value> = self
            .pareto
            .entries()
            .iter()
            .map(|e| member_json(&e.item, e.key, &e.fitness))
            .collect();
        json!({
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "settings_hash": settings_hash,
            "status": status.name(),
            "next_generation": self.next_gen,
            "rng": self.rng.to_hex(),
            "population": pop,
            "hall_of_fame": hof,
            "pareto": pareto,
            "logbook": self.logbook.iter().map(Row::to_json).collect::<Vec<_>>(),
            "totals": self.totals.to_json(),
            "seen": memory.seen.iter().map(|&h| hash_hex(h)).collect::<Vec<_>>(),
            "functions": memory.functions.iter().map(|(k, f)| json!([hash_hex(*k), f])).collect::<Vec<_>>(),
            "evaluation_lines": self.evaluation_lines,
            "merge_lines": self.merge_lines,
            "elapsed_seconds": num(self.elapsed),
        })
    }

    /// Read a checkpoint of the run whose settings hash is
    /// `settings_hash`; trees are read against `set`.
    pub fn from_json(
        v: &Value,
        file: &str,
        settings_hash: &str,
        set: &PrimitiveSet,
        objectives: &Objectives,
        fresh: State,
    ) -> Result<(State, Status, DedupMemory)> {
        let f = Fields::of(v, file, "the checkpoint")?;
        if f.opt("format").and_then(Value::as_str) != Some(CHECKPOINT_FORMAT) {
            return Err(bad(file, "not an actforge search checkpoint".into()));
        }
        if f.u64("version")? != CHECKPOINT_VERSION {
            return Err(bad(
                file,
                format!(
                    "checkpoint format {} is not {CHECKPOINT_VERSION}",
                    f.u64("version")?
                ),
            ));
        }
        let theirs = f.str("settings_hash")?;
        if theirs != settings_hash {
            return Err(bad(
                file,
                format!("belongs to another run: its settings hash is {theirs}, config.json's is {settings_hash}"),
            ));
        }
        let status =
            Status::parse(f.str("status")?).ok_or_else(|| bad(file, "unknown `status`".into()))?;
        let rng = Prng::from_hex(f.str("rng")?).map_err(|e| bad(file, e.to_string()))?;
        let members = |key: &str, o: &Objectives| -> Result<Vec<Individual>> {
            f.array(key)?
                .iter()
                .map(|m| member(m, file, set, o))
                .collect()
        };
        let mut state = fresh;
        state.next_gen = f.usize("next_generation")?;
        state.rng = rng;
        state.population = members("population", objectives)?;
        let pareto_objectives = pareto_objectives();
        for m in members("hall_of_fame", objectives)? {
            state.hof.update(m.key, m.fitness, m.tree);
        }
        for m in members("pareto", &pareto_objectives)? {
            state.pareto.update(m.key, m.fitness, m.tree);
        }
        state.logbook = f
            .array("logbook")?
            .iter()
            .map(|r| Row::from_json(r, file))
            .collect::<Result<_>>()?;
        state.totals = Counters::from_json(f.get("totals")?, file)?;
        state.evaluation_lines = f.usize("evaluation_lines")?;
        state.merge_lines = f.usize("merge_lines")?;
        state.elapsed = f
            .opt("elapsed_seconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let hash_list = |v: &Value| v.as_str().and_then(parse_hash);
        let seen = f
            .array("seen")?
            .iter()
            .map(|h| hash_list(h).ok_or_else(|| bad(file, "`seen` holds a non-hash".into())))
            .collect::<Result<_>>()?;
        let functions = f
            .array("functions")?
            .iter()
            .map(|p| {
                let pair = p.as_array().filter(|a| a.len() == 2);
                pair.and_then(|a| Some((hash_list(&a[0])?, a[1].as_str()?.to_string())))
                    .ok_or_else(|| bad(file, "`functions` holds a malformed entry".into()))
            })
            .collect::<Result<_>>()?;
        Ok((state, status, DedupMemory { seen, functions }))
    }
}

/// Fitness maximised, node count minimised.
pub fn pareto_objectives() -> Objectives {
    use crate::gp::objectives::Sense;
    Objectives::new(vec![Sense::Maximize, Sense::Minimize])
}
