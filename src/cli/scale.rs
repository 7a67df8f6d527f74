//! The scale-out flags of `actforge search` (`--executor`, `--devices`,
//! `--ray-*`, with `--workers`) → a [`Scale`]. The executors live in `crate::search`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::{Error, Result};
use crate::limits::{EVAL_TIMEOUT_SECONDS, WORKERS};
use crate::search::exec::launch::{parse_devices, ExecutorKind};
use crate::search::session::Scale;

/// Scale-out flags (allowed with --resume).
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// thread, process or ray (default: thread; process with --devices).
    #[arg(long, value_parser = ExecutorKind::NAMES)]
    pub executor: Option<String>,
    /// One worker per GPU, e.g. 0,1,2,3 (implies --device cuda).
    #[arg(long, value_name = "LIST", conflicts_with = "workers")]
    pub devices: Option<String>,
    /// A running Ray cluster (auto, head:6379 or ray://head:10001); default: a local instance.
    #[arg(long, value_name = "ADDR")]
    pub ray_address: Option<String>,
    /// The Python with `ray==2.60.0` installed.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub ray_python: PathBuf,
    /// GPUs per Ray task (default: 1 when the run trains on cuda, else 0).
    #[arg(long, value_name = "N")]
    pub ray_gpus: Option<f64>,
    /// CPUs per Ray task (also each task's math threads).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub ray_cpus: f64,
    /// CPUs of a local Ray instance (default: all).
    #[arg(long, value_name = "N")]
    pub ray_local_cpus: Option<usize>,
    /// Kill an evaluation that runs longer (process and Ray executors): it
    /// is retried once, then scored as a failure that says it timed out.
    #[arg(long, value_name = "SECONDS")]
    pub eval_timeout: Option<f64>,
}

/// `--eval-timeout`: a positive number of seconds within the limit.
pub fn eval_timeout(seconds: Option<f64>) -> Result<Option<Duration>> {
    let Some(t) = seconds else {
        return Ok(None);
    };
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::Usage(format!(
            "--eval-timeout must be a positive number of seconds, not {t}"
        )));
    }
    EVAL_TIMEOUT_SECONDS.check(crate::error::Setting::EvalTimeout, t.ceil() as u64)?;
    Ok(Some(Duration::from_secs_f64(t)))
}

impl ScaleArgs {
    /// The [`Scale`] these flags (and `--workers`) describe, every flag
    /// checked (before a run directory is made or opened).
    pub fn scale(&self, workers: Option<usize>) -> Result<Scale> {
        if workers == Some(0) {
            return Err(Error::Usage("--workers must be at least 1".into()));
        }
        if let Some(w) = workers {
            WORKERS.check_usize(crate::error::Setting::Workers, w)?;
        }
        let (kind, devices) = self.check()?;
        let program =
            std::env::current_exe().map_err(|e| Error::io("the actforge executable", e))?;
        Ok(Scale {
            kind,
            workers,
            devices,
            program,
            ray_address: self.ray_address.clone(),
            ray_python: self.ray_python.clone(),
            ray_gpus: self.ray_gpus,
            ray_cpus: self.ray_cpus,
            ray_local_cpus: self.ray_local_cpus,
            eval_timeout: eval_timeout(self.eval_timeout)?,
        })
    }

    /// The executor kind and devices, with the flags checked together (before
    /// a run directory is made).
    pub fn check(&self) -> Result<(ExecutorKind, Vec<usize>)> {
        let devices = self
            .devices
            .as_deref()
            .map(parse_devices)
            .transpose()?
            .unwrap_or_default();
        WORKERS.check_usize(crate::error::Setting::Devices, devices.len())?;
        let kind = match (&self.executor, devices.is_empty()) {
            (Some(k), _) => ExecutorKind::parse(k)?,
            (None, true) => ExecutorKind::Thread,
            (None, false) => ExecutorKind::Process,
        };
        if kind != ExecutorKind::Ray && self.ray_address.is_some() {
            return Err(Error::Usage("--ray-address needs --executor ray".into()));
        }
        if eval_timeout(self.eval_timeout)?.is_some() && kind == ExecutorKind::Thread {
            return Err(Error::Usage(
                "--eval-timeout needs workers that can be killed: add --executor process (or ray); a worker thread cannot be stopped from outside".into(),
            ));
        }
        Ok((kind, devices))
    }
}
