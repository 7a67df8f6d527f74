//! What the search knows about one canonical formula: its fitness (or why
//! it failed), metrics and measures. One line of `evaluations.jsonl` per
//! evaluated or screened formula, one line of `merges.jsonl` per formula
//! that took another's fitness through the functional fingerprint.
//!
//! `evaluations.jsonl` line: `{"hash", "formula", "simplified", "nodes",
//! "fitness" (null on failure), "failure" (null or the reason),
//! "screened" (null or constant|nonfinite|exploding|vanishing|compile),
//! "metrics", "generation", "seconds", "worker", "seeds" (the training
//! seeds the fitness is the mean over; empty for a screened formula;
//! absent in lines written before lines recorded them)}`.
//!
//! `merges.jsonl` line: `{"generation", "hash", "formula", "simplified",
//! "nodes", "took_fitness_of" (the hash of the formula whose fitness it
//! took), "from_formula", "distance" (the worst probe point as a multiple
//! of the fingerprint tolerance; ≤ 1), "fitness", "failure"}`.

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::simplify::hash_hex;

use crate::search::json::{num, Fields};
use crate::search::screen::Reason;

/// The search's knowledge of one canonical key.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub key: u64,
    /// The formula evaluated (canonical prefix form or the tree's text).
    pub formula: String,
    /// The simplified formula in infix, when printable.
    pub simplified: Option<String>,
    /// DAG nodes of the simplified formula (the complexity objective).
    pub nodes: usize,
    pub fitness: Option<f64>,
    pub failure: Option<String>,
    pub metrics: Map<String, Value>,
    pub generation: usize,
    pub seconds: f64,
    pub worker: usize,
    /// For a functional merge: the key whose fitness this one took.
    pub merged_from: Option<u64>,
    /// The training seeds of the fitness (empty: never trained).
    pub seeds: Vec<u64>,
}

impl Record {
    /// The screening reason, if it was screened out.
    pub fn screened(&self) -> Option<Reason> {
        self.failure.as_deref().and_then(Reason::of_failure)
    }

    /// The `evaluations.jsonl` line.
    pub fn to_json(&self) -> Value {
        json!({
            "hash": hash_hex(self.key),
            "formula": self.formula,
            "simplified": self.simplified,
            "nodes": self.nodes,
            "fitness": self.fitness.map_or(Value::Null, num),
            "failure": self.failure,
            "screened": self.screened().map(|r| r.name()),
            "metrics": self.metrics,
            "generation": self.generation,
            "seconds": num(self.seconds),
            "worker": self.worker,
            "seeds": self.seeds,
        })
    }

    /// Read an `evaluations.jsonl` line (`file:line` in errors).
    pub fn from_json(v: &Value, file: &str) -> Result<Record> {
        let f = Fields::of(v, file, "an evaluation")?;
        let fitness = f.opt("fitness").and_then(Value::as_f64);
        let failure = f.opt("failure").and_then(Value::as_str).map(String::from);
        if fitness.is_none() && failure.is_none() {
            return Err(crate::search::json::bad(
                file,
                "an evaluation has neither a fitness nor a failure".into(),
            ));
        }
        Ok(Record {
            key: f.hash("hash")?,
            formula: f.str("formula")?.to_string(),
            simplified: f
                .opt("simplified")
                .and_then(Value::as_str)
                .map(String::from),
            nodes: f.usize("nodes")?,
            fitness,
            failure,
            metrics: f
                .opt("metrics")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            generation: f.usize("generation")?,
            seconds: f.opt("seconds").and_then(Value::as_f64).unwrap_or(0.0),
            worker: f.opt("worker").and_then(Value::as_u64).unwrap_or(0) as usize,
            merged_from: None,
            seeds: match f.opt("seeds") {
                None => Vec::new(),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_u64).collect())
                    .ok_or_else(|| {
                        crate::search::json::bad(
                            file,
                            "`seeds` is not a list of non-negative integers".into(),
                        )
                    })?,
            },
        })
    }

    /// The `merges.jsonl` line of this merged record (`from` is the record
    /// whose fitness it took).
    pub fn merge_json(&self, from: &Record, distance: f32) -> Value {
        json!({
            "generation": self.generation,
            "hash": hash_hex(self.key),
            "formula": self.formula,
            "simplified": self.simplified,
            "nodes": self.nodes,
            "took_fitness_of": hash_hex(from.key),
            "from_formula": from.formula,
            "distance": num(distance as f64),
            "fitness": self.fitness.map_or(Value::Null, num),
            "failure": self.failure,
        })
    }

    /// A merged record: `from`'s results under this formula's key and
    /// measures.
    pub fn merged(
        key: u64,
        formula: String,
        simplified: Option<String>,
        nodes: usize,
        generation: usize,
        from: &Record,
    ) -> Record {
        Record {
            key,
            formula,
            simplified,
            nodes,
            fitness: from.fitness,
            failure: from.failure.clone(),
            metrics: from.metrics.clone(),
            generation,
            seconds: 0.0,
            worker: 0,
            merged_from: Some(from.key),
            seeds: from.seeds.clone(),
        }
    }

    /// Read a `merges.jsonl` line: (the merged key, its formula, simplified
    /// form, nodes, generation, the key it took its fitness from).
    pub fn parse_merge(v: &Value, file: &str) -> Result<MergeLine> {
        let f = Fields::of(v, file, "a merge")?;
        Ok(MergeLine {
            key: f.hash("hash")?,
            formula: f.str("formula")?.to_string(),
            simplified: f
                .opt("simplified")
                .and_then(Value::as_str)
                .map(String::from),
            nodes: f.usize("nodes")?,
            generation: f.usize("generation")?,
            from: f.hash("took_fitness_of")?,
        })
    }
}

/// One line of `merges.jsonl`, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeLine {
    pub key: u64,
    pub formula: String,
    pub simplified: Option<String>,
    pub nodes: usize,
    pub generation: usize,
    pub from: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut metrics = Map::new();
        metrics.insert("bleu".into(), json!(12.5));
        let r = Record {
            key: 0xdead_beef_0123_4567,
            formula: "mul(x, sigmoid(x))".into(),
            simplified: Some("x * sigmoid(x)".into()),
            nodes: 3,
            fitness: Some(0.125),
            failure: None,
            metrics,
            generation: 2,
            seconds: 1.5,
            worker: 1,
            merged_from: None,
            seeds: vec![3, 4],
        };
        assert_eq!(Record::from_json(&r.to_json(), "e").unwrap(), r);
        let failed = Record {
            fitness: None,
            failure: Some("screened: constant (varies by 0)".into()),
            ..r.clone()
        };
        let back = Record::from_json(&failed.to_json(), "e").unwrap();
        assert_eq!(back.screened(), Some(Reason::Constant));
        assert!(Record::from_json(&json!({"hash": "12"}), "e").is_err());
        let m = Record::merged(7, "x".into(), None, 1, 3, &r);
        let line = Record::parse_merge(&m.merge_json(&r, 0.5), "m").unwrap();
        assert_eq!((line.key, line.from, line.generation), (7, r.key, 3));
    }
}
