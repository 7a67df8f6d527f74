//! A raced candidate's results, one candidate-seed at a time.
//!
//! With racing (see [`super::racing`]) a candidate trains one seed per job
//! and earns more seeds over the run, so it has one `evaluations.jsonl`
//! line per seed: the candidate-seed is the unit that is logged, recovered
//! after a crash and never evaluated twice. [`Trials`] gathers a key's
//! lines by seed; [`Trials::summary`] is the one [`Record`] the cache holds
//! for the key, the same whatever order the lines were written in:
//!
//! * `seeds`: every seed, ascending; `fitness`: the mean of the per-seed
//!   fitnesses summed in seed order (so the same bits for any worker count
//!   or rung order), `None` when any seed failed, and then `failure` is the
//!   lowest failed seed's reason;
//! * `metrics`: per key of the lowest seed's metrics, a number present as
//!   a number at every seed is their mean (in seed order), an array is the
//!   arrays joined in seed order (e.g. the training evaluator's `runs`), and
//!   anything else is the lowest seed's (a value equal at every seed is
//!   kept as it is); `per_seed` lists the per-seed
//!   fitnesses (null for a failed seed);
//! * `generation`, `formula`, `simplified`, `nodes`: the lowest seed's;
//!   `seconds`: the sum; `worker`: the lowest seed's.
//!
//! Pure: no files, no engine.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::run::record::Record;

/// A candidate's single-seed results, by seed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trials {
    by_seed: BTreeMap<u64, Record>,
}

/// Why a line cannot join a candidate's trials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The line is not one candidate at one seed.
    NotOneSeed(usize),
    /// The line is another candidate's.
    OtherKey { have: u64, line: u64 },
    /// The seed is already recorded: it would be evaluated twice.
    Twice(u64),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotOneSeed(n) => write!(
                f,
                "a raced evaluation records one seed, this one {n}: the run directory was changed"
            ),
            Refused::OtherKey { have, line } => write!(
                f,
                "the line of {line:016x} was filed with {have:016x}'s trials"
            ),
            Refused::Twice(s) => write!(
                f,
                "seed {s} of this formula is recorded twice: the run directory was changed"
            ),
        }
    }
}

impl Trials {
    /// No seed yet.
    pub fn new() -> Trials {
        Trials::default()
    }

    /// Add one candidate-seed line.
    pub fn add(&mut self, line: Record) -> Result<(), Refused> {
        let &[seed] = &line.seeds[..] else {
            return Err(Refused::NotOneSeed(line.seeds.len()));
        };
        if let Some(first) = self.by_seed.values().next() {
            if first.key != line.key {
                return Err(Refused::OtherKey {
                    have: first.key,
                    line: line.key,
                });
            }
        }
        if self.by_seed.contains_key(&seed) {
            return Err(Refused::Twice(seed));
        }
        self.by_seed.insert(seed, line);
        Ok(())
    }

    /// Whether `seed` is recorded.
    pub fn has(&self, seed: u64) -> bool {
        self.by_seed.contains_key(&seed)
    }

    /// How many seeds are recorded.
    pub fn len(&self) -> usize {
        self.by_seed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seed.is_empty()
    }

    /// The fitness at `seed`: `None` when not recorded, `Some(None)` when
    /// that seed failed.
    pub fn at(&self, seed: u64) -> Option<Option<f64>> {
        self.by_seed.get(&seed).map(|r| r.fitness)
    }

    /// (seed, fitness) in seed order (`None`: that seed failed).
    pub fn values(&self) -> Vec<(u64, Option<f64>)> {
        self.by_seed.iter().map(|(&s, r)| (s, r.fitness)).collect()
    }

    /// The candidate's record over all its seeds (see the module docs);
    /// `None` without a seed.
    pub fn summary(&self) -> Option<Record> {
        let lines: Vec<&Record> = self.by_seed.values().collect();
        let first = *lines.first()?;
        let failed = lines.iter().find(|r| r.fitness.is_none());
        let fitness = match failed {
            Some(_) => None,
            None => {
                let sum: f64 = lines.iter().map(|r| r.fitness.unwrap_or(0.0)).sum();
                Some(sum / lines.len() as f64)
            }
        };
        let mut metrics = merged_metrics(&lines);
        metrics.insert(
            "per_seed".into(),
            Value::Array(lines.iter().map(|r| r.fitness.into()).collect()),
        );
        Some(Record {
            fitness,
            failure: failed.and_then(|r| r.failure.clone()),
            metrics,
            seconds: lines.iter().map(|r| r.seconds).sum(),
            seeds: self.by_seed.keys().copied().collect(),
            ..first.clone()
        })
    }
}

/// The metrics of the lines, merged key by key (see the module docs).
fn merged_metrics(lines: &[&Record]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in &lines[0].metrics {
        let all = lines.iter().map(|r| r.metrics.get(k));
        let merged = match v {
            _ if lines.iter().all(|r| r.metrics.get(k) == Some(v)) => v.clone(),
            Value::Number(_) => {
                let xs: Option<Vec<f64>> = all.map(|x| x.and_then(Value::as_f64)).collect();
                match xs {
                    Some(xs) => crate::search::json::num(xs.iter().sum::<f64>() / xs.len() as f64),
                    None => v.clone(),
                }
            }
            Value::Array(_) => Value::Array(
                all.flat_map(|x| x.and_then(Value::as_array).cloned().unwrap_or_default())
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(seed: u64, fitness: Option<f64>, generation: usize) -> Record {
        let mut metrics = Map::new();
        metrics.insert("ppl".into(), json!(10.0 + seed as f64));
        metrics.insert("runs".into(), json!([{"seed": seed}]));
        metrics.insert("note".into(), json!(format!("seed {seed}")));
        metrics.insert("nodes".into(), json!(3));
        if seed == 2 {
            metrics.insert("bleu".into(), Value::Null);
        } else {
            metrics.insert("bleu".into(), json!(1.0));
        }
        Record {
            key: 7,
            formula: "x".into(),
            simplified: None,
            nodes: 1,
            fitness,
            failure: fitness
                .is_none()
                .then(|| format!("diverged at seed {seed}")),
            metrics,
            generation,
            seconds: 1.0,
            worker: seed as usize,
            merged_from: None,
            seeds: vec![seed],
        }
    }

    #[test]
    fn the_summary_does_not_depend_on_the_order_lines_arrive_in() {
        let values = [0.1, 0.2, 0.3, 0.7];
        let mut a = Trials::new();
        let mut b = Trials::new();
        for s in 0..4u64 {
            a.add(line(s, Some(values[s as usize]), s as usize))
                .unwrap();
        }
        for s in [3u64, 1, 0, 2] {
            b.add(line(s, Some(values[s as usize]), s as usize))
                .unwrap();
        }
        let (sa, sb) = (a.summary().unwrap(), b.summary().unwrap());
        assert_eq!(sa, sb);
        // Summed in seed order, then divided: the bits of a plain mean.
        let expected: f64 = (((0.1 + 0.2) + 0.3) + 0.7) / 4.0;
        assert_eq!(sa.fitness.unwrap().to_bits(), expected.to_bits());
        assert_eq!(sa.seeds, vec![0, 1, 2, 3]);
        assert_eq!(sa.generation, 0);
        assert_eq!(sa.seconds, 4.0);
        assert_eq!(sa.metrics["ppl"], json!(11.5));
        assert_eq!(
            sa.metrics["runs"],
            json!([{"seed": 0}, {"seed": 1}, {"seed": 2}, {"seed": 3}])
        );
        assert_eq!(sa.metrics["note"], json!("seed 0"));
        // Equal at every seed: kept as it is (an integer stays one).
        assert_eq!(sa.metrics["nodes"].to_string(), "3");
        // Not a number at every seed: the lowest seed's value.
        assert_eq!(sa.metrics["bleu"], json!(1.0));
        assert_eq!(sa.metrics["per_seed"], json!([0.1, 0.2, 0.3, 0.7]));
        assert_eq!(
            a.values(),
            vec![
                (0, Some(0.1)),
                (1, Some(0.2)),
                (2, Some(0.3)),
                (3, Some(0.7))
            ]
        );
    }

    #[test]
    fn a_failed_seed_fails_the_candidate() {
        let mut t = Trials::new();
        t.add(line(5, Some(0.1), 0)).unwrap();
        t.add(line(9, None, 2)).unwrap();
        t.add(line(6, None, 1)).unwrap();
        let s = t.summary().unwrap();
        assert_eq!(s.fitness, None);
        assert_eq!(s.failure.as_deref(), Some("diverged at seed 6"));
        assert_eq!(s.metrics["per_seed"], json!([0.1, null, null]));
        assert_eq!(s.seeds, vec![5, 6, 9]);
    }

    #[test]
    fn a_seed_is_never_taken_twice() {
        let mut t = Trials::new();
        assert!(t.summary().is_none());
        t.add(line(1, Some(0.1), 0)).unwrap();
        assert_eq!(t.add(line(1, Some(0.1), 3)), Err(Refused::Twice(1)));
        let mut two = line(2, Some(0.1), 0);
        two.seeds = vec![2, 3];
        assert_eq!(t.add(two), Err(Refused::NotOneSeed(2)));
        let mut other = line(4, Some(0.1), 0);
        other.key = 8;
        assert_eq!(t.add(other), Err(Refused::OtherKey { have: 7, line: 8 }));
        assert!(t.has(1) && !t.has(2));
        assert_eq!(t.len(), 1);
        assert!(Refused::Twice(1).to_string().contains("seed 1"));
    }
}
