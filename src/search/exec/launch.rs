//! Choosing a search's executor: N threads in this process (the default),
//! N worker processes, one worker per GPU (`--devices`), or Ray. Every
//! executor evaluates a job with the same recipe and seeds, so a seeded
//! search reaches the same hall of fame through any of them.
//!
//! * `thread`: [`InProcess`]; with devices, one thread per GPU, each with
//!   its own candle device (its own CUDA context and loaded kernels);
//! * `process`: [`ProcessWorkers`], each worker an `actforge
//!   eval-candidates` child; with devices, one child per GPU
//!   (`--device cuda:N`), each with its own CUDA context, kernel cache and
//!   NVRTC state. The default with devices: a GPU worker that dies (out of
//!   memory, a driver fault) then loses only its candidate;
//! * `ray`: [`RayExecutor`].
//!
//! `--eval-timeout` needs a worker that can be killed: worker processes
//! and Ray tasks. A thread cannot be stopped from outside (Rust has no safe
//! way to end one that hangs in a kernel or a library call), so the thread
//! executor refuses a timeout with a usage error that says to use
//! `--executor process`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::device::Device;
use crate::error::{Error, Result, Setting};

use super::executor::{Evaluate, Executor, InProcess};
use super::process::{ProcessWorkers, WorkerSetup};
use super::ray::{RayExecutor, RayOptions, RaySetup};
use crate::search::config::{EvaluatorKind, Settings};
use crate::search::engine::Search;
use crate::search::synthetic::Synthetic;
use crate::search::training::{recipe, Training};

/// Where candidates are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    Thread,
    Process,
    Ray,
}

impl ExecutorKind {
    pub const NAMES: [&'static str; 3] = ["thread", "process", "ray"];

    pub fn parse(name: &str) -> Result<ExecutorKind> {
        match name {
            "thread" => Ok(ExecutorKind::Thread),
            "process" => Ok(ExecutorKind::Process),
            "ray" => Ok(ExecutorKind::Ray),
            other => Err(Error::Usage(format!(
                "unknown executor `{other}`: use thread, process or ray"
            ))),
        }
    }
}

/// `0,1,3` → the GPU ordinals (distinct, at least one).
pub fn parse_devices(text: &str) -> Result<Vec<usize>> {
    let bad = |why: &str| {
        Error::setting(format!(
            "{} `{text}`: {why} (write e.g. 0,1,2,3)",
            Setting::Devices
        ))
    };
    let mut out: Vec<usize> = Vec::new();
    for part in text.split(',') {
        let n = part
            .trim()
            .strip_prefix("cuda:")
            .unwrap_or(part.trim())
            .parse()
            .map_err(|_| bad("each entry is a GPU number"))?;
        if out.contains(&n) {
            return Err(bad("a GPU is listed twice"));
        }
        out.push(n);
    }
    Ok(out)
}

/// How a search evaluates its candidates.
#[derive(Clone, Debug)]
pub struct Launch {
    pub kind: ExecutorKind,
    /// CPU workers (threads or processes); ignored with devices and Ray.
    pub workers: usize,
    /// GPU ordinals: one worker each.
    pub devices: Vec<usize>,
    /// The `actforge` binary that worker processes and Ray tasks run.
    pub program: PathBuf,
    pub ray: RayOptions,
    /// Longest evaluation of one candidate (`--eval-timeout`); process and
    /// Ray executors only.
    pub eval_timeout: Option<Duration>,
}

impl Launch {
    /// Check the launch against the run's settings before anything
    /// starts: devices need a run that trains on CUDA, and each must open.
    pub fn check(&self, settings: &Settings) -> Result<()> {
        if self.kind == ExecutorKind::Thread && self.eval_timeout.is_some() {
            return Err(Error::setting(format!(
                "{} needs workers that can be killed: use {} process (or ray); a worker thread cannot be stopped from outside",
                Setting::EvalTimeout,
                Setting::Executor
            )));
        }
        if self.devices.is_empty() {
            return Ok(());
        }
        if !settings.train.device.is_cuda() {
            return Err(Error::setting(format!(
                "{} runs one worker per GPU, but this run trains on `{}` (start it with {} cuda)",
                Setting::Devices,
                settings.train.device,
                Setting::Device
            )));
        }
        for d in &self.devices {
            Device::Cuda(Some(*d)).open()?;
        }
        Ok(())
    }

    /// The executor for `search`; `evaluate` is the run's in-process
    /// evaluator (used by `thread` without devices). Worker processes and
    /// the Ray driver are started here, so a worker that cannot start is
    /// an error before any candidate is sent.
    pub fn executor(
        &self,
        search: &Search,
        evaluate: Arc<dyn Evaluate>,
        stop: Arc<AtomicBool>,
    ) -> Result<Box<dyn Executor>> {
        let settings = search.settings();
        self.check(settings)?;
        let recipe_hash = recipe(&settings.train)?.hash();
        let cuda = |d: &usize| Device::Cuda(Some(*d));
        match self.kind {
            ExecutorKind::Thread if self.devices.is_empty() => {
                Ok(Box::new(InProcess::new(evaluate, self.workers, stop)))
            }
            ExecutorKind::Thread => {
                let evaluators = self
                    .devices
                    .iter()
                    .map(|d| self.device_evaluator(search, cuda(d)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Box::new(InProcess::per_worker(evaluators, stop)))
            }
            ExecutorKind::Process => {
                let devices = if self.devices.is_empty() {
                    vec![None; self.workers.max(1)]
                } else {
                    self.devices
                        .iter()
                        .map(|d| Some(cuda(d).to_string()))
                        .collect()
                };
                let mut setup = WorkerSetup::new(
                    self.program.clone(),
                    search.dir().to_path_buf(),
                    recipe_hash,
                    devices,
                );
                setup.timeout = self.eval_timeout;
                let mut p = ProcessWorkers::new(setup, stop);
                p.start()?;
                Ok(Box::new(p))
            }
            ExecutorKind::Ray => {
                let mut r = RayExecutor::new(
                    RaySetup {
                        program: self.program.clone(),
                        run_dir: search.dir().to_path_buf(),
                        recipe: recipe_hash,
                        options: self.ray.clone(),
                        timeout: self.eval_timeout,
                    },
                    stop,
                );
                r.start()?;
                Ok(Box::new(r))
            }
        }
    }

    /// The run's evaluator on `device` (one per GPU thread).
    fn device_evaluator(&self, search: &Search, device: Device) -> Result<Arc<dyn Evaluate>> {
        let s = search.settings();
        Ok(match s.evaluator {
            EvaluatorKind::Train => Arc::new(Training::from_recipe(
                &recipe(&s.train)?,
                device,
                search.library(),
                None,
            )?),
            EvaluatorKind::Synthetic { sleep_ms } => Arc::new(Synthetic::new(sleep_ms)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists() {
        assert_eq!(parse_devices("0,1,3").unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_devices("cuda:2, 0").unwrap(), vec![2, 0]);
        for bad in ["", "0,0", "a", "0,,1", "-1"] {
            assert!(parse_devices(bad).is_err(), "{bad}");
        }
        // The library names the setting, not a flag.
        let e = parse_devices("0,0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: `devices` `0,0`: a GPU is listed twice (write e.g. 0,1,2,3)"
        );
        let Error::Setting(named) = e else {
            panic!("{e:?}")
        };
        assert_eq!(named.settings(), vec![Setting::Devices]);
    }

    #[test]
    fn executor_names() {
        for n in ExecutorKind::NAMES {
            ExecutorKind::parse(n).unwrap();
        }
        assert!(ExecutorKind::parse("slurm").is_err());
    }
}
