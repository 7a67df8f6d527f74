//! One search, assembled: a new run (from resolved [`Settings`], in a
//! given or a fresh default directory) or a resumed one, its evaluators,
//! and where it evaluates ([`Scale`]: the executor, its workers, Ray's
//! options). [`Session::run`] picks the workers (one per core on the CPU
//! by default), shares the CPU's threads between them, launches the
//! executor and runs the search to its [`Outcome`].
//!
//! What stays with the caller: reading flags (into a
//! [`super::request::Request`] and a [`Scale`]), drawing progress (an
//! [`Observer`] and a [`TrainingObserver`]), Ctrl-C (the `stop` flag) and
//! printing the summary. Errors name settings, never flags.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::device::Device;
use crate::error::{Error, Result, Setting};

use super::config::Settings;
use super::engine::{Opened, Outcome, Search};
use super::evaluator::{evaluators, Evaluators};
use super::exec::launch::{ExecutorKind, Launch};
use super::exec::ray::RayOptions;
use super::lockstep::Lockstep;
use super::progress::{Observer, TrainingObserver};
use super::run::dir::default_dir;
use super::run::outputs::Summary;
use super::training::share_cpu_between;

/// Where a session evaluates its candidates. Not part of the run's
/// settings: a resumed run may scale out differently and reaches the same
/// results.
#[derive(Clone, Debug)]
pub struct Scale {
    pub kind: ExecutorKind,
    /// CPU workers (`None`: [`default_workers`] of the run's device).
    pub workers: Option<usize>,
    /// GPU ordinals: one worker each.
    pub devices: Vec<usize>,
    /// The `actforge` binary that worker processes and Ray tasks run.
    pub program: PathBuf,
    /// A running Ray cluster (`None`: a local instance).
    pub ray_address: Option<String>,
    /// The Python with `ray` installed.
    pub ray_python: PathBuf,
    /// GPUs per Ray task (`None`: 1 when the run trains on a GPU, else 0).
    pub ray_gpus: Option<f64>,
    /// CPUs per Ray task.
    pub ray_cpus: f64,
    /// CPUs of a local Ray instance (`None`: all).
    pub ray_local_cpus: Option<usize>,
    /// Longest evaluation of one candidate (process and Ray executors).
    pub eval_timeout: Option<Duration>,
}

impl Scale {
    /// Threads in this process, one per core on the CPU, `program` for
    /// worker processes and Ray tasks.
    pub fn threads(program: PathBuf) -> Scale {
        Scale {
            kind: ExecutorKind::Thread,
            workers: None,
            devices: Vec::new(),
            program,
            ray_address: None,
            ray_python: PathBuf::from("python3"),
            ray_gpus: None,
            ray_cpus: 1.0,
            ray_local_cpus: None,
            eval_timeout: None,
        }
    }

    /// The launch for a run on `device`, with its workers resolved.
    pub fn launch(&self, device: Device) -> Launch {
        Launch {
            kind: self.kind,
            workers: self.workers.unwrap_or_else(|| default_workers(device)),
            devices: self.devices.clone(),
            program: self.program.clone(),
            ray: RayOptions {
                address: self.ray_address.clone(),
                python: self.ray_python.clone(),
                gpus_per_task: self
                    .ray_gpus
                    .unwrap_or(if device.is_cpu() { 0.0 } else { 1.0 }),
                cpus_per_task: self.ray_cpus,
                local_cpus: self.ray_local_cpus,
            },
            eval_timeout: self.eval_timeout,
        }
    }
}

/// One worker per core on the CPU; one on a GPU.
pub fn default_workers(device: Device) -> usize {
    if device.is_cpu() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    }
}

/// Ray tasks evaluate one candidate each, so a lockstep run's populations
/// would train one by one there, with other bits than the thread and
/// process executors give: refused before anything trains.
pub fn lockstep_fits(settings: &Settings, executor: ExecutorKind) -> Result<()> {
    if executor == ExecutorKind::Ray && settings.lockstep != Lockstep::Off {
        let (e, off) = (Setting::Executor, Setting::NoLockstep);
        return Err(Error::setting(format!(
            "{e} ray sends one candidate per task and cannot train lockstep populations (on by default on a GPU): add {off}, or use {e} thread or process"
        )));
    }
    Ok(())
}

/// A search ready to run; see the module docs.
pub struct Session {
    search: Search,
    evaluators: Evaluators,
    scale: Scale,
}

/// What [`Session::resume`] found.
pub enum Resumed {
    /// The run had finished: its summary.
    Finished(Box<Summary>),
    Ready(Box<Session>),
}

impl Session {
    /// A new run of `settings` in `out` (must not exist or be empty), or
    /// in `runs/search-<UTC time>`; `command` is recorded in its
    /// `config.json`. The evaluators prepare their data first: a missing
    /// corpus or device fails before the run directory exists.
    pub fn create(
        settings: Settings,
        out: Option<&Path>,
        command: &[String],
        scale: Scale,
        training: Option<Arc<dyn TrainingObserver>>,
    ) -> Result<Session> {
        lockstep_fits(&settings, scale.kind)?;
        let library = settings.primitive_set(None)?.library_arc();
        let evaluators = evaluators(&settings, library, training)?;
        let search = match out {
            Some(dir) => Search::create(dir, settings, command)?,
            None => create_in_default_dir(settings, command)?,
        };
        Ok(Session {
            search,
            evaluators,
            scale,
        })
    }

    /// The run in `dir`, to continue with its own settings.
    pub fn resume(
        dir: &Path,
        scale: Scale,
        training: Option<Arc<dyn TrainingObserver>>,
    ) -> Result<Resumed> {
        let search = match Search::open(dir)? {
            Opened::Finished(summary) => return Ok(Resumed::Finished(summary)),
            Opened::Ready(search) => *search,
        };
        lockstep_fits(search.settings(), scale.kind)?;
        let evaluators = evaluators(search.settings(), search.library(), training)?;
        Ok(Resumed::Ready(Box::new(Session {
            search,
            evaluators,
            scale,
        })))
    }

    pub fn settings(&self) -> &Settings {
        self.search.settings()
    }

    pub fn dir(&self) -> &Path {
        self.search.dir()
    }

    /// Run the search (the remaining generations and the final stages)
    /// on the scale's workers; `stop` raised (by Ctrl-C) ends it at the
    /// next checkpoint with [`Outcome::Interrupted`].
    pub fn run(&mut self, observer: &mut dyn Observer, stop: Arc<AtomicBool>) -> Result<Outcome> {
        let launch = self.scale.launch(self.settings().train.device);
        share_cpu_between(launch.workers, self.settings().train.device);
        let evaluate = self.evaluators.evaluate.clone();
        let mut exec = launch.executor(&self.search, evaluate, stop.clone())?;
        let retrain = &*self.evaluators.retrain;
        self.search.run(&mut *exec, retrain, observer, &stop)
    }
}

/// A new run in `runs/search-<UTC time>`: when another process takes that
/// name first (two searches started in the same second), the next free
/// name is tried.
fn create_in_default_dir(settings: Settings, command: &[String]) -> Result<Search> {
    let mut tries = 0;
    loop {
        let dir = default_dir(Path::new("runs"));
        match Search::create(&dir, settings.clone(), command) {
            Err(Error::Setting(_)) if dir.exists() && tries < 8 => tries += 1,
            made => return made,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launch's defaults follow the run's device: a worker per core
    /// and no GPU per Ray task on the CPU, one worker and one GPU a task
    /// on a GPU; what was asked for is kept.
    #[test]
    fn the_launch_resolves_against_the_device() {
        let scale = Scale::threads(PathBuf::from("actforge"));
        let cpu = scale.launch(Device::Cpu);
        assert_eq!(cpu.workers, default_workers(Device::Cpu));
        assert!(cpu.workers >= 1);
        assert_eq!(cpu.ray.gpus_per_task, 0.0);
        let gpu = scale.launch(Device::Cuda(None));
        assert_eq!((gpu.workers, gpu.ray.gpus_per_task), (1, 1.0));
        let asked = Scale {
            workers: Some(3),
            ray_gpus: Some(0.5),
            ..scale
        }
        .launch(Device::Cuda(None));
        assert_eq!((asked.workers, asked.ray.gpus_per_task), (3, 0.5));
    }

    #[test]
    fn ray_refuses_lockstep_populations() {
        let on = Settings {
            lockstep: Lockstep::On { size: 4 },
            ..Settings::default()
        };
        let e = lockstep_fits(&on, ExecutorKind::Ray).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            crate::cli::flags::render(&e).contains("add --no-lockstep"),
            "{e}"
        );
        lockstep_fits(&on, ExecutorKind::Process).unwrap();
        lockstep_fits(&Settings::default(), ExecutorKind::Ray).unwrap();
    }
}
