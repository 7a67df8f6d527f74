//! Evaluating candidates of a recorded run outside the search process:
//! the library side of `actforge eval-candidates`.
//!
//! [`Candidates::open`] reads a run directory's `config.json` (the
//! recipe, the primitive set and the training seeds come from there, never
//! from flags), prepares the data once and evaluates with the same
//! evaluator the search uses in process, so a fitness is the same bit for
//! bit on the CPU whichever process computed it.
//!
//! Two ways to drive it, both over the line formats of [`super::batch`]:
//! * [`eval_file`]: a batch file into a results file ([`OutFile`]) that is
//!   rewritten atomically (temporary file, then rename) after every
//!   candidate. Results are keyed by (hash, seeds, recipe): a rerun keeps
//!   the results already in the file and evaluates only the rest, so a
//!   killed job loses at most the candidate it was evaluating. The results
//!   file is checked before any work: it must be empty, missing or a
//!   results file of this command (never the batch, a search's log or any
//!   other file, which stay untouched), in a folder that can be written,
//!   and one process writes it at a time;
//! * [`serve`]: lines in, lines out, one result as each finishes (the
//!   worker processes of [`super::process`]); the first line out is
//!   `{"ready": true, "recipe", "device", "pid"}` once the data is ready.
//!
//! A bad line (malformed or not UTF-8, an unknown key, a formula that does
//! not parse, a hash that is not its formula's, a hash the run never
//! recorded, another recipe, too many seeds) gets an error line; the good
//! lines are still evaluated.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

use crate::device::Device;
use crate::error::{Error, Result, Setting};
use crate::gp::Canonical;
use crate::ir::Library;
use crate::search::candidate::Candidate;
use crate::simplify::hash_hex;
use crate::store::files::{read_json_lines, write_atomic};
use crate::store::safe::read_bounded;
use crate::store::Lock;

use super::batch::{
    error_line, is_output_line, parse_batch_line, parse_group_line, parse_output_line, result_line,
    BatchLine, OutputLine,
};
use super::executor::{evaluate_group_guarded, evaluate_guarded, groups, Evaluate, Job, JobResult};
use crate::search::config::{EvaluatorKind, Settings, PRIMITIVES_COPY};
use crate::search::run::dir::{read_config, EVALUATIONS};
use crate::search::run::record::Record;
use crate::search::synthetic::Synthetic;
use crate::search::training::{recipe, Training};

/// A run directory opened for evaluating candidates.
pub struct Candidates {
    dir: PathBuf,
    settings: Settings,
    recipe: u64,
    library: Arc<Library>,
    /// `None` when the evaluations run in worker processes.
    evaluator: Option<Arc<dyn Evaluate>>,
    device: Device,
    /// Formulas the run has recorded, by hash (read on first use).
    recorded: OnceLock<Result<HashMap<u64, String>, String>>,
}

impl Candidates {
    /// Open the run in `dir`; candidates train on `device` (default: the
    /// run's own). Fails on a directory that is not a search run (or whose
    /// settings are past the limits), and on a device or data that cannot
    /// be prepared. With `in_process` false nothing is prepared: the
    /// evaluations run in worker processes, and this value only resolves
    /// batch lines.
    pub fn open(dir: &Path, device: Option<Device>, in_process: bool) -> Result<Candidates> {
        let settings = read_config(dir)?;
        let copy = (!settings.named_set()).then(|| dir.join(PRIMITIVES_COPY));
        let library = settings.primitive_set(copy.as_deref())?.library_arc();
        let recipe = recipe(&settings.train)?;
        let device = device.unwrap_or(settings.train.device);
        let evaluator: Option<Arc<dyn Evaluate>> = match settings.evaluator {
            _ if !in_process => None,
            EvaluatorKind::Train => Some(Arc::new(Training::from_recipe(
                &recipe,
                device,
                library.clone(),
                None,
            )?)),
            EvaluatorKind::Synthetic { sleep_ms } => Some(Arc::new(Synthetic::new(sleep_ms))),
        };
        Ok(Candidates {
            dir: dir.to_path_buf(),
            recipe: recipe.hash(),
            settings,
            library,
            evaluator,
            device,
            recorded: OnceLock::new(),
        })
    }

    /// The hash of the run's recipe (batch lines may name it).
    pub fn recipe_hash(&self) -> u64 {
        self.recipe
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The job a batch line asks for, or why it cannot be evaluated.
    pub fn resolve(&self, b: &BatchLine) -> std::result::Result<Job, String> {
        if let Some(r) = b.recipe.filter(|&r| r != self.recipe) {
            return Err(format!(
                "the line is for recipe {}, but the run in {} trains with recipe {} (a batch written for another run or settings)",
                hash_hex(r),
                self.dir.display(),
                hash_hex(self.recipe)
            ));
        }
        if let Some(seeds) = &b.seeds {
            crate::limits::SEEDS
                .check_usize(crate::error::Setting::Seeds, seeds.len())
                .map_err(|e| e.to_string().trim_start_matches("error: ").to_string())?;
        }
        let formula = match (&b.formula, b.hash) {
            (Some(f), _) => f.clone(),
            (None, Some(h)) => self.recorded_formula(h)?,
            (None, None) => return Err("the line has neither a `formula` nor a `hash`".into()),
        };
        // The process boundary: the line's text is parsed here, once, into
        // the candidate the evaluator takes.
        let expr = self
            .library
            .parse(&formula)
            .map_err(|d| format!("the formula does not parse: {}", d.message))?;
        let canonical = Canonical::of(&expr).hash;
        // A hash is the cache key of its formula's result: a line whose
        // hash and formula disagree would file one formula's fitness under
        // another's key.
        let key = match b.hash {
            Some(h) if h != canonical => {
                return Err(format!(
                    "`hash` {} is not the hash of the line's `formula` (its canonical hash is {}): give one of them, or both in agreement",
                    hash_hex(h),
                    hash_hex(canonical)
                ))
            }
            _ => canonical,
        };
        Ok(Job {
            candidate: Candidate::new(key, formula, &expr),
            seeds: b
                .seeds
                .clone()
                .unwrap_or_else(|| self.settings.training_seeds()),
        })
    }

    /// The formula the run recorded under `hash`.
    fn recorded_formula(&self, hash: u64) -> std::result::Result<String, String> {
        let recorded = self.recorded.get_or_init(|| {
            let path = self.dir.join(EVALUATIONS);
            let lines = read_json_lines(&path).map_err(|e| e.to_string())?;
            let shown = path.display().to_string();
            let mut by_key = HashMap::new();
            for (i, v) in lines.iter().enumerate() {
                let r = Record::from_json(v, &format!("{shown}:{}", i + 1))
                    .map_err(|e| e.to_string())?;
                by_key.insert(r.key, r.formula);
            }
            Ok(by_key)
        });
        match recorded {
            Err(e) => Err(e.clone()),
            Ok(m) => m.get(&hash).cloned().ok_or_else(|| {
                format!(
                    "the run in {} has not recorded a formula with hash {}: give the `formula`",
                    self.dir.display(),
                    hash_hex(hash)
                )
            }),
        }
    }

    /// Evaluate `job` as worker `worker` (a panic is retried once, then
    /// scored as a failure).
    pub fn evaluate(&self, job: &Job, worker: usize) -> JobResult {
        match &self.evaluator {
            Some(e) => evaluate_guarded(&**e, job, worker),
            None => JobResult::failed(job.key(), "this process evaluates through worker processes"),
        }
    }

    /// Evaluate `group` (jobs with the same seeds) as one group, a
    /// lockstep population with the training evaluator, as worker
    /// `worker`: one result per job, in order (see
    /// [`evaluate_group_guarded`]).
    pub fn evaluate_group(&self, group: &[Job], worker: usize) -> Vec<JobResult> {
        match &self.evaluator {
            Some(e) => evaluate_group_guarded(&**e, group, worker),
            None => group
                .iter()
                .map(|j| {
                    JobResult::failed(j.key(), "this process evaluates through worker processes")
                })
                .collect(),
        }
    }

    /// The run's population size (`1` when it trains one by one).
    pub fn lockstep_size(&self) -> usize {
        self.settings.lockstep.size()
    }
}

/// `I/N`: this process evaluates the batch lines whose index (0-based,
/// counting only candidate lines) is I modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Read `I/N` (0 ≤ I < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::setting(format!(
                "{} `{text}`: write it as I/N with 0 <= I < N",
                Setting::Shard
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// The candidate lines of a batch: (1-based line number, text or why the
/// line is unreadable); blank lines and `#` comments are skipped. A line
/// that is not UTF-8 is reported on its own.
fn candidate_lines(bytes: &[u8]) -> Vec<(usize, std::result::Result<&str, String>)> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| (i + 1, decode_line(raw)))
        .filter(|(_, l)| !matches!(l, Ok(t) if t.is_empty() || t.starts_with('#')))
        .collect()
}

/// A batch line's text, trimmed, or why it is not UTF-8.
fn decode_line(raw: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(raw).map(str::trim).map_err(|e| {
        format!(
            "not UTF-8 (an invalid byte at byte {} of the line)",
            e.valid_up_to() + 1
        )
    })
}

/// What [`eval_file`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// Candidates evaluated now.
    pub evaluated: usize,
    /// Of those, failures (NaN loss, a formula that does not build, …).
    pub failures: usize,
    /// Candidates whose result was already in the output file.
    pub reused: usize,
    /// Lines refused (each has an error line in the output).
    pub errors: usize,
}

/// The identity of a result: hash, seeds, recipe.
type ResultKey = (u64, Vec<u64>, String);

fn key_of(v: &Value) -> Option<ResultKey> {
    let hash = v["hash"]
        .as_str()
        .and_then(crate::search::json::parse_hash)?;
    let seeds = v["seeds"]
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()?;
    Some((hash, seeds, v["recipe"].as_str()?.to_string()))
}

/// The results file of [`eval_file`], checked before any work and locked
/// for this process.
pub struct OutFile {
    path: PathBuf,
    /// Result lines already there (error lines are dropped: a rerun
    /// retries them).
    results: Vec<Value>,
    _lock: Lock,
}

/// A refused `out` (the results file), naming the setting; `message` may
/// name other settings too.
fn out_error(out: &Path, message: String) -> Error {
    Error::setting(format!("{} {}: {message}", Setting::Out, out.display()))
}

impl OutFile {
    /// Check `out` for a run of the batch `batch`: not the batch itself;
    /// missing, empty, or every line a line of this command's output; in a
    /// folder this process can write; no other process writing it. Nothing
    /// is changed when it is refused.
    pub fn open(out: &Path, batch: &Path) -> Result<OutFile> {
        if same_file(out, batch) {
            return Err(out_error(
                out,
                format!(
                    "is the {} file: the results go to a file of their own",
                    Setting::Batch
                ),
            ));
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(out_error(
                out,
                format!("its folder {} does not exist", dir.display()),
            ));
        }
        if std::fs::symlink_metadata(out).is_ok_and(|m| m.is_dir()) {
            return Err(out_error(out, "is a folder".into()));
        }
        let name = out
            .file_name()
            .ok_or_else(|| out_error(out, "is not a file name".into()))?
            .to_string_lossy()
            .into_owned();
        // The lock file is also the proof that the folder can be written,
        // before any training.
        let lock = Lock::file(&dir.join(format!(".{name}.lock")), out, "eval-candidates").map_err(
            |e| match e {
                Error::Io { source, .. } => out_error(
                    out,
                    format!("its folder {} cannot be written: {source}", dir.display()),
                ),
                other => other,
            },
        )?;
        let refuse = |why: String| {
            out_error(
                out,
                format!("is not a results file of eval-candidates ({why}): refusing to replace it; nothing was changed (pick a new {})", Setting::Out),
            )
        };
        let lines = read_json_lines(out)
            .map_err(|e| refuse(e.to_string().trim_start_matches("error: ").to_string()))?;
        if let Some(i) = lines.iter().position(|v| !is_output_line(v)) {
            return Err(refuse(format!(
                "line {} is not a result or error line of this command",
                i + 1
            )));
        }
        let results = lines
            .into_iter()
            .filter(|v| {
                matches!(parse_output_line(&v.to_string()), Ok(OutputLine::Result(_)))
                    && key_of(v).is_some()
            })
            .collect();
        Ok(OutFile {
            path: out.to_path_buf(),
            results,
            _lock: lock,
        })
    }

    fn write(&self, errors: &[Value]) -> Result<()> {
        let mut text = String::new();
        for v in self.results.iter().chain(errors) {
            text.push_str(&v.to_string());
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes()).map_err(|e| {
            let why = match e {
                Error::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            // Writing failed (a full disk, a folder made read-only
            // meanwhile): not a refused setting.
            Error::Failed(format!("{}: cannot be written: {why}", self.path.display()))
        })
    }
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Read the batch file `batch` (a regular file within the size limit).
pub fn read_batch(batch: &Path) -> Result<Vec<u8>> {
    read_bounded(batch, crate::limits::BATCH_FILE_BYTES.max)?.ok_or_else(|| {
        Error::io(
            batch.display().to_string(),
            std::io::ErrorKind::NotFound.into(),
        )
    })
}

/// Evaluate the batch `batch` (its bytes; `shown` names it) or the
/// `shard` of it into `out`; see the module docs. `evaluate` runs one
/// group of jobs (in this process, or in a worker process that a timeout
/// can kill): with `lockstep` 1 each job alone, else the jobs not yet in
/// `out` in groups of the same seeds, up to `lockstep` a group (one
/// lockstep population each; `out` is written after each group). `note`
/// receives one line per candidate and per refused line.
#[allow(clippy::too_many_arguments)]
pub fn eval_file(
    c: &Candidates,
    batch: &[u8],
    shown: &str,
    out: &mut OutFile,
    shard: Option<Shard>,
    lockstep: usize,
    evaluate: &mut dyn FnMut(&[Job]) -> Vec<JobResult>,
    note: &mut dyn FnMut(&str),
) -> Result<FileSummary> {
    let mut have: HashSet<ResultKey> = out.results.iter().filter_map(key_of).collect();
    let mut errors = Vec::new();
    let mut summary = FileSummary::default();
    let recipe = hash_hex(c.recipe_hash());
    let mut todo = Vec::new();
    for (position, (line, text)) in candidate_lines(batch).into_iter().enumerate() {
        if !shard.is_none_or(|s| s.takes(position)) {
            continue;
        }
        let parsed = text.and_then(|t| parse_batch_line(t, line));
        let hash = parsed.as_ref().ok().and_then(|b| b.hash);
        let job = match parsed.and_then(|b| c.resolve(&b)) {
            Ok(job) => job,
            Err(e) => {
                note(&format!("{shown}:{line}: {e}"));
                errors.push(error_line(line, hash, &e));
                summary.errors += 1;
                continue;
            }
        };
        let id = (job.key(), job.seeds.clone(), recipe.clone());
        if !have.insert(id) {
            summary.reused += 1;
            continue;
        }
        todo.push((line, job));
    }
    // One by one: in batch order, each with its line number; else
    // populations of the same seeds.
    let groups: Vec<(Option<usize>, Vec<Job>)> = if lockstep <= 1 {
        todo.into_iter()
            .map(|(line, job)| (Some(line), vec![job]))
            .collect()
    } else {
        let jobs = todo.into_iter().map(|(_, j)| j).collect();
        groups(jobs, lockstep)
            .into_iter()
            .map(|g| (None, g))
            .collect()
    };
    for (line, group) in groups {
        match line {
            Some(line) => note(&format!(
                "evaluating {} (line {line})",
                hash_hex(group[0].key())
            )),
            None => note(&format!(
                "evaluating {} candidates as one population",
                group.len()
            )),
        }
        for (job, r) in group.iter().zip(evaluate(&group)) {
            note(&describe(&r));
            summary.evaluated += 1;
            summary.failures += usize::from(r.fitness.is_none());
            out.results.push(result_line(job, &r, c.recipe_hash()));
        }
        out.write(&errors)?;
    }
    out.write(&errors)?;
    Ok(summary)
}

/// One line about a finished evaluation.
fn describe(r: &JobResult) -> String {
    match (&r.fitness, &r.failure) {
        (Some(f), _) => format!("  {}: fitness {f} ({:.2} s)", hash_hex(r.key), r.seconds),
        (None, why) => format!(
            "  {}: failed: {} ({:.2} s)",
            hash_hex(r.key),
            why.as_deref().unwrap_or("?"),
            r.seconds
        ),
    }
}

/// Serve batch lines from `input`, writing one output line per input line
/// to `output` as each finishes (after the `ready` line); returns at the
/// end of the input. A line that is not UTF-8 gets an error line. `note`
/// receives the progress lines.
pub fn serve(
    c: &Candidates,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    worker: usize,
    note: &mut dyn FnMut(&str),
) -> Result<()> {
    let send = |output: &mut dyn Write, v: &Value| -> Result<()> {
        writeln!(output, "{v}")
            .and_then(|_| output.flush())
            .map_err(|e| Error::io("<stdout>", e))
    };
    let ready = json!({
        "ready": true,
        "recipe": hash_hex(c.recipe_hash()),
        "device": c.device().to_string(),
        "pid": std::process::id(),
    });
    send(output, &ready)?;
    let mut line = 0;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input
            .read_until(b'\n', &mut raw)
            .map_err(|e| Error::io("<stdin>", e))?
            == 0
        {
            return Ok(());
        }
        line += 1;
        let text = decode_line(raw.strip_suffix(b"\n").unwrap_or(&raw));
        if matches!(text, Ok(t) if t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(group) = text.as_ref().ok().and_then(|t| parse_group_line(t)) {
            serve_group(c, group, line, output, worker, note, &send)?;
            continue;
        }
        let parsed = text.and_then(|t| parse_batch_line(t, line));
        let hash = parsed.as_ref().ok().and_then(|b| b.hash);
        match parsed.and_then(|b| c.resolve(&b)) {
            Ok(job) => {
                note(&format!("evaluating {} (line {line})", hash_hex(job.key())));
                let r = c.evaluate(&job, worker);
                note(&describe(&r));
                send(output, &result_line(&job, &r, c.recipe_hash()))?;
            }
            Err(e) => {
                note(&format!("<stdin>:{line}: {e}"));
                send(output, &error_line(line, hash, &e))?;
            }
        }
    }
}

/// Answer group line `line` (its members, or why it is not one): one
/// output line per member, in order; the members that resolve train as one
/// group ([`Candidates::evaluate_group`]), the others get error lines.
fn serve_group(
    c: &Candidates,
    group: std::result::Result<Vec<Value>, String>,
    line: usize,
    output: &mut dyn Write,
    worker: usize,
    note: &mut dyn FnMut(&str),
    send: &dyn Fn(&mut dyn Write, &Value) -> Result<()>,
) -> Result<()> {
    let members = match group {
        Ok(m) => m,
        Err(e) => {
            note(&format!("<stdin>:{line}: {e}"));
            return send(output, &error_line(line, None, &e));
        }
    };
    let resolved: Vec<std::result::Result<Job, (Option<u64>, String)>> = members
        .iter()
        .map(|m| {
            let parsed = parse_batch_line(&m.to_string(), line);
            let hash = parsed.as_ref().ok().and_then(|b| b.hash);
            parsed.and_then(|b| c.resolve(&b)).map_err(|e| (hash, e))
        })
        .collect();
    let jobs: Vec<Job> = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    note(&format!(
        "evaluating {} candidates as one population (line {line})",
        jobs.len()
    ));
    let mut results = if jobs.is_empty() {
        Vec::new()
    } else {
        c.evaluate_group(&jobs, worker)
    }
    .into_iter();
    for r in resolved {
        match r {
            Ok(job) => {
                let r = results.next().expect("one result per job");
                note(&describe(&r));
                send(output, &result_line(&job, &r, c.recipe_hash()))?;
            }
            Err((hash, e)) => {
                note(&format!("<stdin>:{line}: {e}"));
                send(output, &error_line(line, hash, &e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_candidate_lines() {
        let s = Shard::parse("1/3").unwrap();
        let taken: Vec<usize> = (0..7).filter(|&p| s.takes(p)).collect();
        assert_eq!(taken, vec![1, 4]);
        for bad in ["3/3", "1", "a/2", "0/0"] {
            match Shard::parse(bad) {
                Err(Error::Setting(named)) => assert_eq!(named.settings(), vec![Setting::Shard]),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn comments_and_blank_lines_are_not_candidates() {
        let lines = candidate_lines(b"# a batch\n\n{\"formula\": \"x\"}\n  \n{}\n");
        assert_eq!(lines, vec![(3, Ok("{\"formula\": \"x\"}")), (5, Ok("{}"))]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_reported_alone() {
        let lines = candidate_lines(b"{\"formula\": \"x\"}\n{\"formula\": \"\xff\"}\n{}");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], (1, Ok("{\"formula\": \"x\"}")));
        assert!(lines[1].1.as_ref().unwrap_err().contains("not UTF-8"));
        assert_eq!(lines[2], (3, Ok("{}")));
    }
}
