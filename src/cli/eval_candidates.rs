//! `actforge eval-candidates`: flags → [`Candidates`], then a batch file
//! into a results file ([`eval_file`]) or lines from stdin to stdout
//! ([`serve`]). The logic lives in `crate::search::exec::candidates`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Args;

use super::io::note;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::search::exec::candidates::{eval_file, read_batch, serve, Candidates, OutFile, Shard};
use crate::search::exec::process::{ProcessWorkers, WorkerSetup};
use crate::search::lockstep::Lockstep;
use crate::search::{Executor, Job, JobResult};

pub const AFTER_HELP: &str = "\
Evaluates candidates of a search run in a fresh process: the recipe
(task, preset, steps, batch size, thinning), the primitive set and the
default training seeds come from the run directory's config.json, so a
fitness is the same bit for bit on the CPU as when the search evaluated
it in process. This is what the process workers (--executor process,
--devices), the Ray executor and the Slurm script (scripts/slurm-eval.sh)
run.

Batch (JSONL, one candidate per line; blank lines and # comments skipped):
  {\"formula\": \"safe_mul(ARG0, sigmoid_boost(ARG0))\"}
  {\"hash\": \"0123456789abcdef\", \"seeds\": [0, 1]}
  {\"hash\": \"…\", \"formula\": \"…\", \"seeds\": [3], \"recipe\": \"…\"}
`formula` or `hash` is required: a hash alone names a formula the run
recorded in evaluations.jsonl; a formula alone is filed under its
canonical hash; with both, the hash must be the formula's. `seeds`
defaults to the run's training seeds (the fitness is their mean; at most
1000). `recipe`, when given, must be the run's recipe hash. Other keys
are refused.

Output (JSONL): one result line per candidate, {\"hash\", \"formula\",
\"seeds\", \"recipe\", \"fitness\" (null on failure), \"failure\" (null or the
reason), \"metrics\", \"seconds\", \"worker\"}, and one error line per refused
batch line, {\"line\", \"hash\", \"error\"} (malformed JSON or a line that is
not UTF-8, an unknown key, a formula that does not parse, a hash that is
not its formula's, a hash the run never recorded, another recipe); the
good lines are evaluated all the same, and the exit status is then 1. The
file is replaced atomically (temporary file, then rename) after every
candidate. Results are keyed by (hash, seeds, recipe): rerunning the same
command keeps the results already in --out and evaluates only the rest,
so a killed job loses at most the candidate it was working on.

An existing --out must be a results file of this command (or empty):
anything else (the batch itself, a search's evaluations.jsonl, any other
file) is refused before any work, and nothing is changed. Its folder must
be writable, and one process writes an --out at a time.

--eval-timeout SECONDS: each candidate is evaluated in a worker process
that is killed when it runs longer; the candidate is tried once more,
then recorded as a failure that says it timed out.

--batch - --out -: read batch lines from stdin and write one output line
per batch line to stdout as each finishes, after a first line
{\"ready\": true, \"recipe\", \"device\", \"pid\"} written once the data is
prepared (the protocol of the process workers).

--lockstep: the batch's candidates (those not already in --out) train as
lockstep populations, one per set of seeds, of up to --lockstep-size
members (default: the run's --lockstep-size when it has one, else the
whole batch): each member's result is its one-by-one value up to the
drift of rounding over training (1e-4 relative over a few steps; over
150 a median of 8e-4 and up to 2 %: see the README's \"Lockstep in the
search\") and still one result line; a member that diverges fails alone.
--out is written after each population.

--shard I/N: evaluate only the candidate lines whose index (from 0) is I
modulo N (one Slurm array task each; merge the outputs by hash).

JSON (--json, file mode): {\"out\", \"evaluated\", \"failures\", \"reused\",
\"errors\"}.

Examples:
  actforge eval-candidates --run runs/qa1 --batch batch.jsonl --out results.jsonl
  actforge eval-candidates --run runs/qa1 --batch batch.jsonl --out part-3.jsonl --shard 3/8 --device cuda:0
  echo '{\"formula\": \"sin(ARG0)\"}' | actforge eval-candidates --run runs/qa1 --batch - --out -";

/// Arguments of `actforge eval-candidates`.
#[derive(Args, Debug)]
pub struct EvalCandidatesArgs {
    /// The search run directory whose recorded config gives the recipe.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// The batch (JSONL), or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub batch: PathBuf,
    /// The results (JSONL), or `-` for standard output (with --batch -).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where candidates train: cpu, cuda or cuda:N (default: the run's device).
    #[arg(long)]
    pub device: Option<String>,
    /// Evaluate only shard I of N (I from 0), e.g. 3/8.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The worker number written into the results (logs only).
    #[arg(long, default_value_t = 0)]
    pub worker: usize,
    /// Print the file-mode summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Train the batch's candidates as lockstep populations (one per set
    /// of seeds), not one by one.
    #[arg(long)]
    pub lockstep: bool,
    /// Members per population with --lockstep (default: the run's
    /// --lockstep-size, else the whole batch).
    #[arg(long, value_name = "K", requires = "lockstep")]
    pub lockstep_size: Option<usize>,
    /// Kill an evaluation that runs longer (it runs in a worker process of
    /// its own): retried once, then a failure that says it timed out.
    #[arg(long, value_name = "SECONDS")]
    pub eval_timeout: Option<f64>,
}

fn is_dash(p: &std::path::Path) -> bool {
    p.as_os_str() == "-"
}

/// Run the command.
pub fn run(out: &mut dyn Write, a: &EvalCandidatesArgs) -> Result<i32> {
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let timeout = super::scale::eval_timeout(a.eval_timeout)?;
    match (is_dash(&a.batch), is_dash(&a.out)) {
        (true, false) | (false, true) => {
            return Err(Error::Usage(
                "--batch - (standard input) goes with --out - (standard output), and a batch file with an output file".into(),
            ))
        }
        (true, true) if shard.is_some() => {
            return Err(Error::Usage("--shard needs a batch file".into()))
        }
        (true, true) if timeout.is_some() => {
            return Err(Error::Usage(
                "--eval-timeout needs a batch file: with --batch - the process that sends the candidates enforces its own timeout (the search does, with --eval-timeout)".into(),
            ))
        }
        _ => {}
    }
    let device = a.device.as_deref().map(Device::parse).transpose()?;
    let quiet = a.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            note(line);
        }
    };
    if is_dash(&a.batch) {
        let c = Candidates::open(&a.run, device, true)?;
        let stdin = std::io::stdin();
        serve(&c, &mut stdin.lock(), out, a.worker, &mut progress)?;
        return Ok(0);
    }
    // Everything that can be refused is refused before any data is
    // prepared or anything trains: the batch, --out, the run.
    let batch = read_batch(&a.batch)?;
    let mut results = OutFile::open(&a.out, &a.batch)?;
    let c = Candidates::open(&a.run, device, timeout.is_none())?;
    let shown = a.batch.display().to_string();
    let lockstep = match (a.lockstep, a.lockstep_size) {
        (false, _) => 1,
        (true, Some(k)) => {
            Lockstep::On { size: k }.check()?;
            k
        }
        (true, None) if c.lockstep_size() > 1 => c.lockstep_size(),
        (true, None) => crate::search::lockstep::MAX_SIZE,
    };
    let s = match timeout {
        None => {
            let mut evaluate = |group: &[Job]| c.evaluate_group(group, a.worker);
            eval_file(
                &c,
                &batch,
                &shown,
                &mut results,
                shard,
                lockstep,
                &mut evaluate,
                &mut progress,
            )?
        }
        Some(t) => {
            // A worker process of our own, which a timeout can kill.
            let program =
                std::env::current_exe().map_err(|e| Error::io("the actforge executable", e))?;
            let mut setup = WorkerSetup::new(
                program,
                c.dir().to_path_buf(),
                c.recipe_hash(),
                vec![Some(c.device().to_string())],
            );
            setup.log_dir = None;
            setup.quiet = true;
            setup.timeout = Some(t);
            let mut workers = ProcessWorkers::new(setup, Arc::new(AtomicBool::new(false)));
            workers.start()?;
            let mut evaluate = |group: &[Job]| {
                let mut got: Vec<JobResult> = Vec::new();
                let ran = workers.run_groups(vec![group.to_vec()], &mut |rs| {
                    got.extend(rs);
                    Ok(())
                });
                group
                    .iter()
                    .map(|job| {
                        let mine = got.iter().find(|r| r.key == job.key()).cloned();
                        let mut r = match (&ran, mine) {
                            (Ok(()), Some(r)) => r,
                            (Err(e), _) => JobResult::failed(job.key(), e.to_string()),
                            (Ok(()), None) => {
                                JobResult::failed(job.key(), "the worker gave no result")
                            }
                        };
                        r.worker = a.worker;
                        r
                    })
                    .collect()
            };
            eval_file(
                &c,
                &batch,
                &shown,
                &mut results,
                shard,
                lockstep,
                &mut evaluate,
                &mut progress,
            )?
        }
    };
    if a.json {
        outln!(
            out,
            "{}",
            serde_json::json!({"out": a.out.display().to_string(), "evaluated": s.evaluated,
                "failures": s.failures, "reused": s.reused, "errors": s.errors})
        );
    } else {
        outln!(
            out,
            "{} evaluated ({} failed), {} already in {}, {} lines refused",
            s.evaluated,
            s.failures,
            s.reused,
            a.out.display(),
            s.errors
        );
    }
    Ok(if s.errors > 0 { 1 } else { 0 })
}
