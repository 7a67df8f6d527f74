//! The Ray executor: a generation's candidates go to a Ray cluster as
//! `@ray.remote` tasks, each running `actforge eval-candidates` in a fresh
//! process; the search stays in this process and stays the driver of the
//! search.
//!
//! The Python side is `scripts/ray_driver.py` (the `ray` package, pinned;
//! compiled into the binary and written to `executor/ray_driver.py` in the
//! run directory, so the run records what ran). It is started once per
//! search with `--ray-python` (default `python3`), connects to
//! `--ray-address` or starts a local Ray instance, and stays up across
//! generations: candidates go in as batch lines on its stdin, results come
//! back on its stdout as tasks finish. Its stderr (Ray's messages) goes to
//! `workers/ray-driver.log`.
//!
//! A failed task is retried once by Ray, then scored as a failure with the
//! reason. Losing the cluster (the driver says so, or dies) is an error:
//! the search stops; the evaluations that finished are in
//! `evaluations.jsonl` and the checkpoint of the last generation is in
//! place, so `--resume` continues once the cluster is back. Ctrl-C stops
//! the driver (and its tasks) and leaves the batch undone, which the
//! engine records as an interruption.
//!
//! Imports from the crate only `error`, and its
//! siblings `executor`, `batch` and `process`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::files::write_atomic;
use crate::store::safe::{open_append, real_dir};

use super::batch::{job_line, parse_output_line, OutputLine};
use super::executor::{Executor, Job, JobResult};
use super::process::WORKER_LOGS;

/// The driver script, as shipped in `scripts/`.
pub const DRIVER: &str = include_str!("../../../scripts/ray_driver.py");
/// The `ray` release the driver is pinned to.
pub const RAY_VERSION: &str = "2.60.0";
/// Where the driver is written in the run directory.
pub const DRIVER_COPY: &str = "executor/ray_driver.py";

/// How to reach Ray.
#[derive(Clone, Debug, PartialEq)]
pub struct RayOptions {
    /// A running cluster (`auto`: the one this machine is part of);
    /// `None` starts a local instance.
    pub address: Option<String>,
    /// The Python that has `ray` installed.
    pub python: PathBuf,
    /// GPUs per task (`num_gpus`): 1 to train each candidate on a GPU.
    pub gpus_per_task: f64,
    /// CPUs per task (`num_cpus`; also the task's math threads).
    pub cpus_per_task: f64,
    /// CPUs of a local instance (default: all).
    pub local_cpus: Option<usize>,
}

/// What the executor needs to know about the run.
#[derive(Clone, Debug)]
pub struct RaySetup {
    /// The `actforge` binary (at this path on every node).
    pub program: PathBuf,
    pub run_dir: PathBuf,
    /// The run's recipe hash, written into every batch line.
    pub recipe: u64,
    pub options: RayOptions,
    /// Longest evaluation of one candidate (`--eval-timeout`): the task
    /// kills its `eval-candidates` process after it, Ray retries the task
    /// once, then the candidate is scored as a failure that says it timed
    /// out.
    pub timeout: Option<Duration>,
}

struct Driver {
    child: Child,
    stdin: ChildStdin,
    /// Lines of its stdout; `None` at its end.
    lines: Receiver<Option<String>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Candidates as Ray tasks behind the [`Executor`] interface.
pub struct RayExecutor {
    setup: RaySetup,
    driver: Option<Driver>,
    stop: Arc<AtomicBool>,
    /// Tasks that can run at once (from the cluster's resources).
    slots: usize,
}

impl RayExecutor {
    pub fn new(setup: RaySetup, stop: Arc<AtomicBool>) -> RayExecutor {
        RayExecutor {
            setup,
            driver: None,
            stop,
            slots: 1,
        }
    }

    /// Start the driver and connect to Ray (a clear error when Python,
    /// `ray` or the cluster is missing).
    pub fn start(&mut self) -> Result<()> {
        if self.driver.is_none() {
            let (driver, slots) = start_driver(&self.setup)?;
            self.driver = Some(driver);
            self.slots = slots;
        }
        Ok(())
    }

    /// The error that stops the search when the cluster is gone.
    fn lost(&mut self, detail: String) -> Error {
        self.driver = None;
        let dir = self.setup.run_dir.display();
        let address = self
            .setup
            .options
            .address
            .as_deref()
            .map_or(String::new(), |a| format!(" --ray-address {a}"));
        Error::Missing {
            what: "the Ray cluster".into(),
            detail: format!("it was lost during a generation: {detail}"),
            hint: format!(
                "the evaluations that finished are logged in {dir}/evaluations.jsonl and the checkpoint of the last finished generation is in {dir}; bring the cluster back and continue with: actforge search --resume {dir} --executor ray{address}"
            ),
        }
    }
}

fn driver_log(run_dir: &Path) -> PathBuf {
    run_dir.join(WORKER_LOGS).join("ray-driver.log")
}

fn start_driver(setup: &RaySetup) -> Result<(Driver, usize)> {
    let script = setup.run_dir.join(DRIVER_COPY);
    let log = driver_log(&setup.run_dir);
    for dir in [script.parent(), log.parent()].into_iter().flatten() {
        real_dir(dir)?;
    }
    // Replaced whole (a link planted there is replaced, never followed);
    // the log is appended to, never through a link.
    write_atomic(&script, DRIVER.as_bytes())?;
    let log_file = open_append(&log)?;
    let o = &setup.options;
    let mut cmd = Command::new(&o.python);
    cmd.arg(&script)
        .arg("--run")
        .arg(&setup.run_dir)
        .arg("--actforge")
        .arg(&setup.program)
        .args(["--gpus", &o.gpus_per_task.to_string()])
        .args(["--cpus", &o.cpus_per_task.to_string()]);
    if let Some(a) = &o.address {
        cmd.args(["--address", a]);
    }
    if let Some(n) = o.local_cpus {
        cmd.args(["--local-cpus", &n.to_string()]);
    }
    if let Some(t) = setup.timeout {
        cmd.args(["--timeout", &t.as_secs_f64().to_string()]);
    }
    // A cluster that goes away is noticed in seconds, not a minute.
    cmd.env("RAY_gcs_rpc_server_reconnect_timeout_s", "15")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .process_group(0);
    let missing = |detail: String| {
        Error::Missing {
        what: format!("Ray (the `ray=={RAY_VERSION}` Python package)"),
        detail,
        hint: format!(
            "install it with `python3 -m venv ray-env && ray-env/bin/pip install ray=={RAY_VERSION}` and pass {} ray-env/bin/python; the driver's messages are in {}",
            crate::error::Setting::RayPython,
            log.display()
        ),
    }
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| missing(format!("cannot run {}: {e}", o.python.display())))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(None);
    });
    let mut driver = Driver {
        child,
        stdin,
        lines,
    };
    let first = driver.lines.recv().ok().flatten();
    let v: Value = first
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    if v["ready"] == true {
        let cpus = v["resources"]["CPU"].as_f64().unwrap_or(1.0);
        let gpus = v["resources"]["GPU"].as_f64().unwrap_or(0.0);
        let slots = if o.gpus_per_task > 0.0 {
            gpus / o.gpus_per_task
        } else {
            cpus / o.cpus_per_task.max(1e-9)
        };
        return Ok((driver, (slots as usize).max(1)));
    }
    let status = driver.child.wait().ok();
    let why = match v["lost"].as_str() {
        Some(lost) => lost.to_string(),
        None => format!(
            "the driver {}{}",
            status.map_or("stopped".into(), |s| format!("ended ({s})")),
            last_line(&log)
        ),
    };
    Err(missing(why))
}

fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!("; its last line: {}", l.trim()))
        })
        .unwrap_or_default()
}

impl Executor for RayExecutor {
    fn workers(&self) -> usize {
        self.slots
    }

    /// Ray tasks evaluate one candidate each: a group's members are sent
    /// as single jobs (lockstep populations are for the thread and process
    /// executors).
    fn run_groups(
        &mut self,
        groups: Vec<Vec<Job>>,
        done: &mut dyn FnMut(Vec<JobResult>) -> Result<()>,
    ) -> Result<()> {
        let jobs: Vec<Job> = groups.into_iter().flatten().collect();
        if jobs.is_empty() || self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.start()?;
        let mut waiting: HashSet<u64> = jobs.iter().map(|j| j.key()).collect();
        let mut text = String::new();
        for job in &jobs {
            text.push_str(&job_line(job, self.setup.recipe).to_string());
            text.push('\n');
        }
        let driver = self.driver.as_mut().expect("started");
        if let Err(e) = driver
            .stdin
            .write_all(text.as_bytes())
            .and_then(|_| driver.stdin.flush())
        {
            return Err(self.lost(format!("the driver stopped reading candidates ({e})")));
        }
        while !waiting.is_empty() {
            if self.stop.load(Ordering::SeqCst) {
                // Ctrl-C: the driver and its tasks go; the rest is undone.
                self.driver = None;
                return Ok(());
            }
            let driver = self.driver.as_mut().expect("started");
            let line = match driver.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(line)) => line,
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    let status = driver.child.wait().ok();
                    let why = format!(
                        "the Ray driver {}{}",
                        status.map_or("stopped".into(), |s| format!("ended ({s})")),
                        last_line(&driver_log(&self.setup.run_dir))
                    );
                    return Err(self.lost(why));
                }
            };
            if !line.starts_with('{') {
                // Not a protocol line (the driver sends Ray's own output to
                // its log, but a library may still print).
                continue;
            }
            if let Some(lost) = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["lost"].as_str().map(String::from))
            {
                return Err(self.lost(lost));
            }
            let r = match parse_output_line(&line) {
                Ok(OutputLine::Result(r)) => r.normalized(),
                Ok(OutputLine::Error {
                    hash: Some(h),
                    error,
                    ..
                }) => JobResult::failed(h, format!("the task refused the candidate: {error}")),
                Ok(OutputLine::Error { error, .. }) => {
                    return Err(self.lost(format!("a task refused a candidate: {error}")))
                }
                Err(e) => {
                    return Err(
                        self.lost(format!("the driver wrote an unreadable line ({e}): {line}"))
                    )
                }
            };
            // A result for a key not (or no longer) waited for cannot be
            // applied twice: the first one counts.
            if waiting.remove(&r.key) {
                done(vec![r])?;
            }
        }
        Ok(())
    }
}
