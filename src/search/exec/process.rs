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
//! directory (never through a symbolic link), which starts each child's
//! section with its pid.
//!
//! With a timeout (`--eval-timeout`), a candidate whose result has not come
//! back in time has its worker killed (SIGKILL: a stopped or hung child
//! goes too) and is tried once more on a fresh worker; a second timeout
//! scores it as a failure whose reason says it timed out.
//!
//! Imports from the crate only `error` and `simplify::hash_hex`, and its
//! siblings `executor` and `batch`, and `run::dir`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::simplify::hash_hex;
use crate::store::safe::{open_append, real_dir};

use super::batch::{group_line, job_line, parse_output_line, OutputLine};
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
    /// Where the workers' logs go (`worker-N.log`; a search uses
    /// `RUN/workers`); `None`: the children write to this process's stderr.
    pub log_dir: Option<PathBuf>,
    /// Longest wait for one candidate's result (`--eval-timeout`).
    pub timeout: Option<Duration>,
    /// Start the children with `--quiet` (no progress lines).
    pub quiet: bool,
}

impl WorkerSetup {
    /// Workers of the run in `run_dir`, logging into `RUN/workers`, with
    /// no timeout.
    pub fn new(
        program: PathBuf,
        run_dir: PathBuf,
        recipe: u64,
        devices: Vec<Option<String>>,
    ) -> WorkerSetup {
        WorkerSetup {
            log_dir: Some(run_dir.join(WORKER_LOGS)),
            program,
            run_dir,
            recipe,
            devices,
            timeout: None,
            quiet: false,
        }
    }
}

/// A running child.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    /// Lines of its stdout (read by a thread of their own, so that a wait
    /// can time out); `None` at its end.
    lines: Receiver<Option<String>>,
}

/// Lines of `out`, sent as they come; `None` at the end.
fn line_reader(out: impl Read + Send + 'static) -> Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = BufReader::new(out);
        loop {
            let mut line = String::new();
            match out.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    if tx.send(Some(line)).is_err() {
                        return;
                    }
                }
                _ => break,
            }
        }
        let _ = tx.send(None);
    });
    rx
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
                    return Err(Error::Failed(format!(
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

/// The log file of worker `i` of a search in `run_dir`.
pub fn log_path(run_dir: &Path, i: usize) -> PathBuf {
    run_dir.join(WORKER_LOGS).join(format!("worker-{i}.log"))
}

impl WorkerSetup {
    /// The log file of worker `i`, if the workers have logs.
    fn log(&self, i: usize) -> Option<PathBuf> {
        self.log_dir
            .as_ref()
            .map(|d| d.join(format!("worker-{i}.log")))
    }
}

/// Open a worker's log for appending: its folder must be a real folder
/// and the log a real file (a planted link is an error, never followed).
fn open_log(path: &Path) -> std::result::Result<File, String> {
    if let Some(dir) = path.parent() {
        real_dir(dir).map_err(|e| e.to_string())?;
    }
    open_append(path).map_err(|e| e.to_string())
}

/// Append `line` to worker `i`'s log (if it has one).
fn log_line(setup: &WorkerSetup, i: usize, line: &str) {
    if let Some(mut log) = setup.log(i).and_then(|p| open_log(&p).ok()) {
        let _ = writeln!(log, "{line}");
    }
}

/// Start worker `i` and wait for its `ready` line.
fn spawn(setup: &WorkerSetup, i: usize) -> std::result::Result<Worker, String> {
    let log_file = setup.log(i);
    let log = log_file.as_deref().map(open_log).transpose()?;
    let mut cmd = Command::new(&setup.program);
    cmd.arg("eval-candidates")
        .arg("--run")
        .arg(&setup.run_dir)
        .args(["--batch", "-", "--out", "-", "--worker", &i.to_string()]);
    if let Some(d) = &setup.devices[i] {
        cmd.args(["--device", d]);
    }
    if setup.quiet {
        cmd.arg("--quiet");
    }
    let mut header = match &log {
        Some(l) => Some(l.try_clone().map_err(|e| e.to_string())?),
        None => None,
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.map_or_else(Stdio::inherit, Stdio::from))
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", setup.program.display()))?;
    if let Some(h) = &mut header {
        let _ = writeln!(
            h,
            "== worker {i}: pid {}, device {}",
            child.id(),
            device_label(&setup.devices[i])
        );
    }
    let stdin = child.stdin.take().expect("piped stdin");
    let lines = line_reader(child.stdout.take().expect("piped stdout"));
    let ready = lines.recv().ok().flatten().is_some_and(|line| {
        serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v["ready"] == true)
    });
    if !ready {
        let _ = child.kill();
        let status = child.wait().ok();
        return Err(format!(
            "{}{}",
            status.map_or("it stopped".into(), describe_status),
            log_file.as_deref().map_or(String::new(), last_words)
        ));
    }
    Ok(Worker {
        child,
        stdin,
        lines,
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
fn bury(mut w: Worker, log: Option<&Path>, what: &str) -> String {
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
        log.map_or(String::new(), last_words)
    )
}

/// How a try of a candidate was lost.
enum Lost {
    /// The worker died (or broke the protocol): why.
    Died(String),
    /// No result within the timeout; the worker was killed: why.
    TimedOut(String),
}

impl Lost {
    fn why(&self) -> &str {
        match self {
            Lost::Died(w) | Lost::TimedOut(w) => w,
        }
    }
}

/// Start worker `i` if it is not running and send it `line` (a job or a
/// group line); `what` names it if the worker dies meanwhile.
fn send(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    line: &str,
    what: &str,
) -> std::result::Result<(), Lost> {
    if slot.is_none() {
        let w =
            spawn(setup, i).map_err(|e| Lost::Died(format!("the worker did not restart: {e}")))?;
        *slot = Some(w);
    }
    let w = slot.as_mut().expect("started");
    let mut text = line.to_string();
    text.push('\n');
    if w.stdin
        .write_all(text.as_bytes())
        .and_then(|_| w.stdin.flush())
        .is_err()
    {
        return Err(lost_worker(setup, slot, i, what));
    }
    Ok(())
}

/// Bury the worker in `slot` (it died or misbehaved), saying `what`.
fn lost_worker(setup: &WorkerSetup, slot: &mut Option<Worker>, i: usize, what: &str) -> Lost {
    let log = setup.log(i);
    Lost::Died(bury(slot.take().expect("started"), log.as_deref(), what))
}

/// Worker `i`'s answer for `job`, waited for until `deadline`: its result
/// (or the worker's refusal, a scored failure), with the worker's number.
/// `group` is the size of the group the job was sent in (`None`: alone),
/// for the messages. A timeout kills the worker.
fn receive(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    job: &Job,
    deadline: Option<std::time::Instant>,
    group: Option<usize>,
) -> std::result::Result<JobResult, Lost> {
    let w = slot.as_mut().expect("started");
    let got = match deadline {
        Some(d) => w
            .lines
            .recv_timeout(d.saturating_duration_since(std::time::Instant::now())),
        None => w.lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    let line = match got {
        Ok(Some(line)) => line,
        Ok(None) | Err(RecvTimeoutError::Disconnected) => {
            let during = match group {
                None => "during the evaluation",
                Some(_) => "during the group's evaluation",
            };
            return Err(lost_worker(setup, slot, i, during));
        }
        Err(RecvTimeoutError::Timeout) => {
            let mut w = slot.take().expect("started");
            let pid = w.child.id();
            // SIGKILL ends a stopped or hung child too.
            let _ = w.child.kill();
            let _ = w.child.wait();
            let t = setup.timeout.expect("a timeout").as_secs_f64();
            return Err(Lost::TimedOut(match group {
                None => format!(
                    "no result within {t} s (--eval-timeout): the worker process (pid {pid}) was killed"
                ),
                Some(n) => format!(
                    "no result within {t} s a member (--eval-timeout) for a group of {n}: the worker process (pid {pid}) was killed"
                ),
            }));
        }
    };
    let r = match parse_output_line(&line) {
        Ok(OutputLine::Result(r)) if r.key == job.key() => r.normalized(),
        Ok(OutputLine::Error { error, .. }) => JobResult::failed(
            job.key(),
            format!("the worker refused the candidate: {error}"),
        ),
        Ok(OutputLine::Result(r)) => {
            return Err(lost_worker(
                setup,
                slot,
                i,
                &format!("answered {} for {}", hash_hex(r.key), hash_hex(job.key())),
            ))
        }
        Err(e) => {
            return Err(lost_worker(
                setup,
                slot,
                i,
                &format!("wrote an unreadable line ({e})"),
            ))
        }
    };
    Ok(JobResult { worker: i, ..r })
}

/// One try of `job` on worker `i`: its result, or how it was lost.
fn attempt(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    job: &Job,
) -> std::result::Result<JobResult, Lost> {
    send(
        setup,
        slot,
        i,
        &job_line(job, setup.recipe).to_string(),
        "sending the candidate",
    )?;
    let deadline = setup.timeout.map(|t| std::time::Instant::now() + t);
    receive(setup, slot, i, job, deadline, None)
}

/// `job` on worker `i`, tried once more on a fresh worker if the first
/// one dies or times out; then a scored failure that says which.
fn run_job(setup: &WorkerSetup, slot: &mut Option<Worker>, i: usize, job: &Job) -> JobResult {
    let mut losses = Vec::new();
    for attempt_no in 0..2 {
        match attempt(setup, slot, i, job) {
            Ok(r) => return r,
            Err(lost) => {
                log_line(
                    setup,
                    i,
                    &format!(
                        "== worker {i}: lost candidate {} (try {}): {}",
                        hash_hex(job.key()),
                        attempt_no + 1,
                        lost.why()
                    ),
                );
                losses.push(lost);
            }
        }
    }
    let timeouts = losses
        .iter()
        .filter(|l| matches!(l, Lost::TimedOut(_)))
        .count();
    let what = match timeouts {
        2 => "the evaluation timed out twice",
        1 => "the evaluation timed out once and its worker died once",
        _ => "worker died twice",
    };
    let last = losses.last().map_or("", Lost::why);
    let mut r = JobResult::failed(job.key(), format!("{what}: {last}"));
    r.worker = i;
    r
}

/// One try of `group` (two or more jobs) on worker `i` as one group line:
/// its results in order, or how it was lost. The timeout covers the
/// group's members one after another (the population trains them
/// together: the first result may come after all of their time).
fn attempt_group(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    group: &[Job],
) -> std::result::Result<Vec<JobResult>, Lost> {
    send(
        setup,
        slot,
        i,
        &group_line(group, setup.recipe).to_string(),
        "sending the group",
    )?;
    let deadline = setup
        .timeout
        .map(|t| std::time::Instant::now() + t * group.len() as u32);
    group
        .iter()
        .map(|job| receive(setup, slot, i, job, deadline, Some(group.len())))
        .collect()
}

/// `group` on worker `i`: one job as [`run_job`]; two or more as one
/// group line, and if that try is lost (the worker died or timed out),
/// member by member with [`run_job`], so that a member that kills its
/// worker fails alone.
fn run_group(
    setup: &WorkerSetup,
    slot: &mut Option<Worker>,
    i: usize,
    group: &[Job],
) -> Vec<JobResult> {
    if group.len() == 1 {
        return vec![run_job(setup, slot, i, &group[0])];
    }
    match attempt_group(setup, slot, i, group) {
        Ok(results) => results,
        Err(lost) => {
            log_line(
                setup,
                i,
                &format!(
                    "== worker {i}: lost a group of {} ({}); evaluating its members one by one",
                    group.len(),
                    lost.why()
                ),
            );
            group
                .iter()
                .map(|job| run_job(setup, slot, i, job))
                .collect()
        }
    }
}

impl Executor for ProcessWorkers {
    fn workers(&self) -> usize {
        self.slots.len()
    }

    fn run_groups(
        &mut self,
        groups: Vec<Vec<Job>>,
        done: &mut dyn FnMut(Vec<JobResult>) -> Result<()>,
    ) -> Result<()> {
        let setup = &self.setup;
        let slots: Vec<&mut Option<Worker>> = self.slots.iter_mut().collect();
        run_pool(slots, groups, &self.stop, done, |slot, i, group| {
            run_group(setup, slot, i, group)
        })
    }
}
