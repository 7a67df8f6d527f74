//! The scale-out flags of `actforge search` (`--executor`, `--devices`,
//! `--ray-*`) → a [`Launch`]. The executors live in `crate::search`.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::search::exec_ray::RayOptions;
use crate::search::launch::{parse_devices, ExecutorKind, Launch};

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
}

impl ScaleArgs {
    /// The launch these flags describe for a run on `device` with
    /// `workers` CPU workers.
    pub fn launch(&self, device: &str, workers: usize, quiet: bool) -> Result<Launch> {
        let devices = self
            .devices
            .as_deref()
            .map(parse_devices)
            .transpose()?
            .unwrap_or_default();
        let kind = match (&self.executor, devices.is_empty()) {
            (Some(k), _) => ExecutorKind::parse(k)?,
            (None, true) => ExecutorKind::Thread,
            (None, false) => ExecutorKind::Process,
        };
        if kind != ExecutorKind::Ray && self.ray_address.is_some() {
            return Err(Error::Usage("--ray-address needs --executor ray".into()));
        }
        let program =
            std::env::current_exe().map_err(|e| Error::io("the actforge executable", e))?;
        Ok(Launch {
            kind,
            workers,
            devices,
            program,
            ray: RayOptions {
                address: self.ray_address.clone(),
                python: self.ray_python.clone(),
                gpus_per_task: self
                    .ray_gpus
                    .unwrap_or(if device == "cpu" { 0.0 } else { 1.0 }),
                cpus_per_task: self.ray_cpus,
                local_cpus: self.ray_local_cpus,
            },
            quiet,
        })
    }
}
