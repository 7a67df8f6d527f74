//! Worker processes: each worker is a long-lived `actforge eval-candidates
//! --batch - --out -` child (on a device of its own with `--devices`),
//! fed one batch line at a time over its stdin; results come back on its
//! stdout as each finishes.
//!
//! A child that dies (killed, out of memory, a driver fault) loses only the
//! candidate it held: a fresh child is started and the candidate tried once
//! more; a second death scores it as a failure whose reason names the
//! signal or exit status and the child's last line of output. The search
//! goes on. Children run in their own process group, so a Ctrl-C at the
//! terminal reaches only the search (which lets running evaluations
//! finish); their stderr goes to `workers/worker-N.log` in the run
//! directory, which starts each child's section with its pid.
//!
//! Imports from the crate only `error` and `simplify::hash_hex`, and its
//! siblings `executor`, `batch` and `rundir`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::simplify::hash_hex;

use super::batch::{job_line, parse_output_line, OutputLine};
use super::executor::{run_pool, Executor, Job, JobResult};

/// Folder of the workers' logs in the run directory.
pub const WORKER_LOGS: &str = "workers";

/// How to start the workers (shared by their threads).
#[derive(Clone, Debug)]
pub struct WorkerSetup {
    /// The `actforge` binary (or a program that speaks its protocol).
    pub program: PathBuf,
    /// The run directory (`--run`).
    pub run_dir: PathBuf,
    /// The run's recipe hash, written into every batch line.
    pub recipe: u64,
    /// One entry per worker: its `--device`, or `None` for the run's own.
    pub devices: Vec<Option<String>>,
}

/// A running child.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// N worker processes behind the [`Executor`] interface.
pub struct ProcessWorkers {
    setup: WorkerSetup,
    slots: Vec<Option<Worker>>,
    stop: Arc<AtomicBool>,
}

impl ProcessWorkers {
    /// Workers as `setup` describes (at least one); `stop` is the Ctrl-C
    /// flag. Nothing starts until [`ProcessWorkers::start`] or the first
    /// batch.
    pub fn new(mut setup: WorkerSetup, stop: Arc<AtomicBool>) -> ProcessWorkers {
        if setup.devices.is_empty() {
            setup.devices.push(None);
        }
        let slots = setup.devices.iter().map(|_| None).collect();
        ProcessWorkers { setup, slots, stop }
    }

    /// Start every worker and wait until each has prepared its data: a
    /// worker that cannot start (no such device, a broken run directory)
    /// is an error here, before any candidate is sent.
    pub fn start(&mut self) -> Result<()> {
        let setup = &self.setup;
        let started: Vec<std::result::Result<Worker, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..self.slots.len())
                .map(|i| s.spawn(move || spawn(setup, i)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect()
        });
        for (i, w) in started.into_iter().enumerate() {
            match w {
                Ok(w) => self.slots[i] = Some(w),
                Err(why) => {
                    return Err(Error::Usage(format!(
                        "worker {i} ({}) did not start: {why}",
                        device_label(&self.setup.devices[i])
                    )))
                }
            }
        }
        Ok(())
    }
}

fn device_label(d: &Option<String>) -> String {
    d.clone().unwrap_or_else(|| "the run's device".into())
}

/// The log file of worker `i`.
pub fn log_path(run_dir: &Path, i: usize) -> PathBuf {
    run_dir.join(WORKER_LOGS).join(format!("worker-{i}.log"))
}

fn open_log(path: &Path) -> std::result::Result<File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Start worker `i` and wait for its `ready` line.
fn spawn(setup: &WorkerSetup, i: usize) -> std::result::Result<Worker, String> {
    let log_file = log_path(&setup.run_dir, i);
    let log = open_log(&log_file)?;
    let mut cmd = Command::new(&setup.program);
    cmd.arg("eval-candidates")
        .arg("--run")
        .arg(&setup.run_dir)
        .args(["--batch", "-", "--out", "-", "--worker", &i.to_string()]);
    if let Some(d) = &setup.devices[i] {
        cmd.args(["--device", d]);
    }
    let mut header = log.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", setup.program.display()))?;
    let _ = writeln!(
        header,
        "== worker {i}: pid {}, device {}",
        child.id(),
        device_label(&setup.devices[i])
    );
    let stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let n = stdout.read_line(&mut line).unwrap_or(0);
    let ready = n > 0
        && serde_json::from_str::<serde_json::Value>(&line)
            .map(|v| v["ready"] == true)
            .unwrap_or(false);
    if !ready {
        let _ = child.kill();
        let status = child.wait().ok();
        return Err(format!(
            "{}{}",
            status.map_or("it stopped".into(), describe_status),
            last_words(&log_file)
        ));
    }
    Ok(Worker {
        child,
        stdin,
        stdout,
    })
}

/// "was killed by signal 9 (SIGKILL: …)" or "exited with status N".
fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(9)) => "was killed by signal 9 (SIGKILL: out of memory or kill -9)".into(),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "stopped".into(),
    }
}

/// "; its last line: …" from the end of a worker's log, or nothing.
fn last_words(log: &Path) -> String {
    let Ok(mut f) = File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = String::new();
    let _ = f.read_to_string(&mut tail);
    tail.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("== worker"))
        .map_or(String::new(), |l| format!("; its last line: {}", l.trim()))
}

/// Why a worker is gone: kill it (if it still runs) and describe how it
/// ended.
fn bury(mut w: Worker, log: &Path, what: &str) -> String {
    let pid = w.child.id();
    let status = match w.child.try_wait() {
        Ok(Some(s)) => Some(s),
        _ => {
            // It closed its output but may still be exiting.
            std::thread::sleep(std::time::Duration::from_millis(50));
            match w.child.try_wait() {
                Ok(Some(s)) => Some(s),
                _ => {
                    let _ = w.child.kill();
                    w.child.wait().ok()
                }
            }
        }
    };
    format!(
        "{what}: the worker process (pid {pid}) {}{}",
        status.map_or("stopped".into(), describe_status),
        last_words(log)
    )
}

/// One try of `job` on worker `i`: its result, or why the worker died.
fn attempt(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    job: &Job,
) -> std::result::Result<JobResult, String> {
    if slot.is_none() {
        *slot = Some(spawn(setup, i).map_err(|e| format!("the worker did not restart: {e}"))?);
    }
    let w = slot.as_mut().expect("started");
    let log = log_path(&setup.run_dir, i);
    let mut text = job_line(job, setup.recipe).to_string();
    text.push('\n');
    if w.stdin
        .write_all(text.as_bytes())
        .and_then(|_| w.stdin.flush())
        .is_err()
    {
        return Err(bury(
            slot.take().expect("started"),
            &log,
            "sending the candidate",
        ));
    }
    let mut line = String::new();
    let n = w.stdout.read_line(&mut line).unwrap_or(0);
    if n == 0 {
        return Err(bury(
            slot.take().expect("started"),
            &log,
            "during the evaluation",
        ));
    }
    match parse_output_line(&line) {
        Ok(OutputLine::Result(mut r)) if r.key == job.key => {
            r.worker = i;
            Ok(r.normalized())
        }
        Ok(OutputLine::Error { error, .. }) => {
            let mut r = JobResult::failed(
                job.key,
                format!("the worker refused the candidate: {error}"),
            );
            r.worker = i;
            Ok(r)
        }
        Ok(OutputLine::Result(r)) => Err(bury(
            slot.take().expect("started"),
            &log,
            &format!("answered {} for {}", hash_hex(r.key), hash_hex(job.key)),
        )),
        Err(e) => Err(bury(
            slot.take().expect("started"),
            &log,
            &format!("wrote an unreadable line ({e})"),
        )),
    }
}

/// `job` on worker `i`, tried once more on a fresh worker if the first
/// one dies; then a scored failure.
fn run_job(setup: &WorkerSetup, slot: &mut Option<Worker>, i: usize, job: &Job) -> JobResult {
    let mut reason = String::new();
    for attempt_no in 0..2 {
        match attempt(setup, slot, i, job) {
            Ok(r) => return r,
            Err(why) => {
                if let Ok(mut log) = open_log(&log_path(&setup.run_dir, i)) {
                    let _ = writeln!(
                        log,
                        "== worker {i}: lost candidate {} (try {}): {why}",
                        hash_hex(job.key),
                        attempt_no + 1
                    );
                }
                reason = why;
            }
        }
    }
    let mut r = JobResult::failed(job.key, format!("worker died twice: {reason}"));
    r.worker = i;
    r
}

impl Executor for ProcessWorkers {
    fn workers(&self) -> usize {
        self.slots.len()
    }

    fn run(&mut self, jobs: Vec<Job>, done: &mut dyn FnMut(JobResult) -> Result<()>) -> Result<()> {
        let setup = &self.setup;
        let slots: Vec<&mut Option<Worker>> = self.slots.iter_mut().collect();
        run_pool(slots, jobs, &self.stop, done, |slot, i, job| {
            run_job(setup, slot, i, job)
        })
    }
}
