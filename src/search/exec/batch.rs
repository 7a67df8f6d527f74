//! The line formats of `actforge eval-candidates`, shared by every
//! executor that sends candidates out of the process (worker processes,
//! Ray tasks, Slurm shards).
//!
//! A **batch line** asks for one candidate:
//! `{"hash": "<16 hex>", "formula": "…", "seeds": [0, 1], "recipe": "<16 hex>"}`.
//! `formula` or `hash` must be there: a hash alone names a formula the run
//! has recorded in `evaluations.jsonl`; a formula alone is filed under its
//! canonical hash; both must agree (the hash is the formula's canonical
//! hash). `seeds` defaults to the run's training seeds; `recipe`, when
//! present, must equal the run's recipe hash (a batch written for another
//! recipe is refused line by line). Any other key is refused (a typo such
//! as `"seed"` would otherwise silently use the default).
//!
//! A **result line** answers one:
//! `{"hash", "formula", "seeds", "recipe", "fitness" (null on failure),
//! "failure" (null or the reason), "metrics", "seconds", "worker"}`; an
//! **error line** refuses one: `{"line", "hash" (or null), "error"}`.
//! Fitness and metrics are written with round-trip floats, so a fitness
//! read back is the same `f64` bit for bit.
//!
//! Imports from the crate only `error`, `simplify::hash_hex` and its
//! siblings `executor` and `json`.

use serde_json::{json, Map, Value};

use crate::simplify::hash_hex;

use super::executor::{Job, JobResult};
use crate::search::json::{num, parse_hash};

/// One parsed batch line (before the run resolves it to a [`Job`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLine {
    /// 1-based line number in the batch.
    pub line: usize,
    pub hash: Option<u64>,
    pub formula: Option<String>,
    pub seeds: Option<Vec<u64>>,
    pub recipe: Option<u64>,
}

/// The keys of a batch line.
pub const BATCH_KEYS: [&str; 4] = ["hash", "formula", "seeds", "recipe"];
/// The keys of a result line, exactly.
pub const RESULT_KEYS: [&str; 9] = [
    "hash", "formula", "seeds", "recipe", "fitness", "failure", "metrics", "seconds", "worker",
];
/// The keys of an error line, exactly.
pub const ERROR_KEYS: [&str; 3] = ["line", "hash", "error"];

/// Read batch line `line` (1-based); the error is the message of an
/// error line.
pub fn parse_batch_line(text: &str, line: usize) -> Result<BatchLine, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let Some(map) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    if let Some(k) = map.keys().find(|k| !BATCH_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key `{k}` (a batch line has {})",
            BATCH_KEYS.map(|k| format!("`{k}`")).join(", ")
        ));
    }
    let hash = match map.get("hash").filter(|v| !v.is_null()) {
        None => None,
        Some(h) => Some(
            h.as_str()
                .and_then(parse_hash)
                .ok_or_else(|| format!("`hash` must be 16 hex digits, not {h}"))?,
        ),
    };
    let formula = match map.get("formula").filter(|v| !v.is_null()) {
        None => None,
        Some(f) => Some(
            f.as_str()
                .ok_or_else(|| format!("`formula` must be a string, not {f}"))?
                .to_string(),
        ),
    };
    if hash.is_none() && formula.is_none() {
        return Err("the line has neither a `formula` nor a `hash`".into());
    }
    let seeds = match map.get("seeds").filter(|v| !v.is_null()) {
        None => None,
        Some(s) => Some(seed_list(s)?),
    };
    let recipe = match map.get("recipe").filter(|v| !v.is_null()) {
        None => None,
        Some(r) => Some(
            r.as_str()
                .and_then(parse_hash)
                .ok_or_else(|| format!("`recipe` must be 16 hex digits, not {r}"))?,
        ),
    };
    Ok(BatchLine {
        line,
        hash,
        formula,
        seeds,
        recipe,
    })
}

fn seed_list(v: &Value) -> Result<Vec<u64>, String> {
    let bad = || format!("`seeds` must be a non-empty list of non-negative integers, not {v}");
    let list = v.as_array().ok_or_else(bad)?;
    if list.is_empty() {
        return Err(bad());
    }
    list.iter().map(|s| s.as_u64().ok_or_else(bad)).collect()
}

/// The batch line of `job` for a run whose recipe hash is `recipe`.
pub fn job_line(job: &Job, recipe: u64) -> Value {
    json!({
        "hash": hash_hex(job.key()),
        "formula": job.formula(),
        "seeds": job.seeds,
        "recipe": hash_hex(recipe),
    })
}

/// The line of a group of jobs that train together (one lockstep
/// population): `{"group": [batch line, …]}`, answered by one output line
/// per member, in order.
pub fn group_line(jobs: &[Job], recipe: u64) -> Value {
    json!({ "group": jobs.iter().map(|j| job_line(j, recipe)).collect::<Vec<_>>() })
}

/// The members of a group line (each a batch line's JSON), or `None`
/// when `text` is not a group line.
pub fn parse_group_line(text: &str) -> Option<Result<Vec<Value>, String>> {
    let v: Value = serde_json::from_str(text).ok()?;
    let map = v.as_object()?;
    let group = map.get("group")?;
    if map.len() != 1 {
        return Some(Err("a group line has the one key `group`".into()));
    }
    match group.as_array() {
        Some(list) if !list.is_empty() => Some(Ok(list.clone())),
        _ => Some(Err("`group` must be a non-empty list of batch lines".into())),
    }
}

/// The result line of `r`, an evaluation of `job`.
pub fn result_line(job: &Job, r: &JobResult, recipe: u64) -> Value {
    json!({
        "hash": hash_hex(r.key),
        "formula": job.formula(),
        "seeds": job.seeds,
        "recipe": hash_hex(recipe),
        "fitness": r.fitness.map_or(Value::Null, num),
        "failure": r.failure,
        "metrics": r.metrics,
        "seconds": num(r.seconds),
        "worker": r.worker,
    })
}

/// The error line refusing batch line `line`.
pub fn error_line(line: usize, hash: Option<u64>, error: &str) -> Value {
    json!({
        "line": line,
        "hash": hash.map(hash_hex),
        "error": error,
    })
}

/// What one output line is.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputLine {
    Result(JobResult),
    Error {
        line: usize,
        hash: Option<u64>,
        error: String,
    },
}

/// Whether `v` is exactly an output line of `eval-candidates`: an object
/// with the keys of a result line or of an error line, no more, no fewer,
/// and readable as one. (A line of `evaluations.jsonl` or any other file
/// is not.)
pub fn is_output_line(v: &Value) -> bool {
    let Some(map) = v.as_object() else {
        return false;
    };
    let keys = |want: &[&str]| map.len() == want.len() && want.iter().all(|k| map.contains_key(*k));
    (keys(&RESULT_KEYS) || keys(&ERROR_KEYS)) && parse_output_line(&v.to_string()).is_ok()
}

/// Read a result or error line.
pub fn parse_output_line(text: &str) -> Result<OutputLine, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON line: {e}"))?;
    let map = v.as_object().ok_or("not a JSON object")?;
    let hash = map.get("hash").and_then(Value::as_str).and_then(parse_hash);
    if let Some(error) = map.get("error").and_then(Value::as_str) {
        let line = map.get("line").and_then(Value::as_u64).unwrap_or(0) as usize;
        return Ok(OutputLine::Error {
            line,
            hash,
            error: error.to_string(),
        });
    }
    let key = hash.ok_or("a result line without a 16-hex-digit `hash`")?;
    let fitness = map.get("fitness").and_then(Value::as_f64);
    let failure = map.get("failure").and_then(Value::as_str).map(String::from);
    if fitness.is_none() && failure.is_none() {
        return Err("a result line with neither a fitness nor a failure".into());
    }
    Ok(OutputLine::Result(JobResult {
        key,
        fitness,
        metrics: map
            .get("metrics")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
        failure,
        seconds: map.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
        worker: map.get("worker").and_then(Value::as_u64).unwrap_or(0) as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            candidate: crate::search::candidate::Candidate::parse(
                0x0123_4567_89ab_cdef,
                "safe_mul(ARG0, sin(ARG0))",
                crate::ir::Library::standard(),
            )
            .unwrap(),
            seeds: vec![3, 4],
        }
    }

    #[test]
    fn a_job_line_reads_back() {
        let text = job_line(&job(), 7).to_string();
        let b = parse_batch_line(&text, 5).unwrap();
        assert_eq!(b.line, 5);
        assert_eq!(b.hash, Some(job().key()));
        assert_eq!(b.formula.as_deref(), Some("safe_mul(ARG0, sin(ARG0))"));
        assert_eq!(b.seeds, Some(vec![3, 4]));
        assert_eq!(b.recipe, Some(7));
    }

    #[test]
    fn a_result_line_reads_back_bit_for_bit() {
        let mut metrics = Map::new();
        metrics.insert("ppl".into(), json!(0.1 + 0.2));
        let r = JobResult {
            key: job().key(),
            fitness: Some(1.0 / 3.0),
            metrics,
            failure: None,
            seconds: 0.5,
            worker: 2,
        };
        let line = result_line(&job(), &r, 7);
        assert!(is_output_line(&line));
        let text = line.to_string();
        assert_eq!(parse_output_line(&text).unwrap(), OutputLine::Result(r));
        // A search's evaluation line is not a result line.
        let record = json!({"hash": hash_hex(job().key()), "formula": "x", "simplified": "x",
            "nodes": 1, "fitness": 0.5, "failure": null, "screened": null, "metrics": {},
            "generation": 0, "seconds": 0.1, "worker": 0});
        assert!(!is_output_line(&record));
        assert!(is_output_line(&error_line(3, None, "bad")));
        let e = error_line(4, None, "no formula").to_string();
        assert_eq!(
            parse_output_line(&e).unwrap(),
            OutputLine::Error {
                line: 4,
                hash: None,
                error: "no formula".into()
            }
        );
    }

    #[test]
    fn bad_batch_lines_say_what_is_wrong() {
        for (text, needle) in [
            ("{", "not a JSON object"),
            ("[1]", "not a JSON object"),
            ("{}", "neither a `formula` nor a `hash`"),
            (r#"{"hash": "12"}"#, "16 hex digits"),
            (r#"{"formula": 3}"#, "`formula` must be a string"),
            (r#"{"formula": "x", "seeds": []}"#, "`seeds`"),
            (r#"{"formula": "x", "seeds": [-1]}"#, "`seeds`"),
            (r#"{"formula": "x", "recipe": "zz"}"#, "`recipe`"),
            (r#"{"formula": "x", "seed": [3]}"#, "unknown key `seed`"),
        ] {
            let e = parse_batch_line(text, 1).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
