//! A `train` run as one value: [`Session::create`] checks a
//! [`TrainRequest`], prepares the data and makes the run directory (whole,
//! or not at all); [`Session::resume`] opens one and checks it against
//! what it started with. Either way this process holds the directory's
//! lock until the session is dropped, and [`Session::run`] trains what is
//! left. The command line only parses flags into a request, draws
//! progress and prints the results.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::device::Device;
use crate::error::{Error, Result, Setting};
use crate::fitness::{Prepared, Recipe, Task};
use crate::ir::seeds::{SEED_QA, SEED_T5};
use crate::store::files::{utc_stamp, write_json};
use crate::store::{Lock, NewDir};

use super::results::Results;
use super::run::{run_experiment, Progress};
use super::spec::{check_data, parse_activation, Experiment};

/// What a new `train` run is asked to do; [`Session::create`] fills in
/// the defaults.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub recipe: Recipe,
    /// Activation specs, the first the baseline; empty: GELU and the
    /// task's seed formula ([`default_activations`]).
    pub activations: Vec<String>,
    /// Every activation trains with seeds 1..=`seeds`.
    pub seeds: u64,
    /// Where the runs train (recorded as it was written).
    pub device: Device,
    /// Checkpoint every this many steps (0: only at the end of a run).
    pub checkpoint_every: u64,
    /// Sample answers kept per run (Q&A).
    pub samples: usize,
    /// The run directory; `None`: `runs/train-TASK-TIMESTAMP`.
    pub out: Option<PathBuf>,
    /// The command line, recorded in `config.json`.
    pub command: Vec<String>,
}

/// GELU and the task's seed formula: what `train` compares when no
/// activation is named.
pub fn default_activations(task: Task) -> Vec<String> {
    let seed = if task == Task::TranslateT5 {
        SEED_T5
    } else {
        SEED_QA
    };
    vec!["gelu".to_string(), seed.to_string()]
}

/// An open `train` run: its settings, its prepared data, its directory
/// and the lock on it.
pub struct Session {
    experiment: Experiment,
    prepared: Prepared,
    dir: PathBuf,
    _lock: Lock,
}

impl Session {
    /// A new run: everything is checked and the data prepared before the
    /// directory exists; it then appears whole (`config.json`,
    /// `tokenizer.json`, `split/`) or not at all.
    pub fn create(req: TrainRequest) -> Result<Session> {
        if req.seeds == 0 {
            return Err(Error::setting(format!(
                "{} must be at least 1",
                Setting::Seeds
            )));
        }
        crate::limits::SEEDS.check(Setting::Seeds, req.seeds)?;
        let activations = if req.activations.is_empty() {
            default_activations(req.recipe.task)
        } else {
            req.activations
        };
        for a in &activations {
            parse_activation(a)?;
        }
        req.device.open()?;
        let mut experiment = Experiment {
            recipe: req.recipe,
            activations,
            seeds: (1..=req.seeds).collect(),
            device: req.device,
            checkpoint_every: req.checkpoint_every,
            samples: req.samples,
            command: req.command,
            data: None,
        };
        let prepared = Prepared::new(&experiment.recipe)?;
        experiment.data = Some(prepared.describe());
        let dir = req.out.unwrap_or_else(|| {
            PathBuf::from(format!(
                "runs/train-{}-{}",
                experiment.recipe.task,
                utc_stamp()
            ))
        });
        let hint = format!("choose another {}, or {} it", Setting::Out, Setting::Resume);
        let new = NewDir::begin(&dir, "train", &hint)?;
        write_json(&new.path().join("config.json"), &experiment.to_json())?;
        prepared.save_to(new.path())?;
        let lock = new.commit()?;
        Ok(Session {
            experiment,
            prepared,
            dir,
            _lock: lock,
        })
    }

    /// The run in `dir`: its settings must match their recorded hash and
    /// its data what it started with; finished runs are not trained again.
    pub fn resume(dir: &Path) -> Result<Session> {
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(Error::Usage(format!(
                "{} is not an actforge train run directory: it has no config.json",
                dir.display()
            )));
        }
        let lock = Lock::dir(dir, "train")?;
        let experiment = load(&config)?;
        experiment.device.open()?;
        let prepared = Prepared::new(&experiment.recipe)?;
        check_data(&experiment, &prepared, &config)?;
        Ok(Session {
            experiment,
            prepared,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Train every run not yet finished; `stop` ends it cleanly after a
    /// checkpoint (`Results::interrupted`).
    pub fn run(&self, progress: &dyn Progress, stop: Option<&AtomicBool>) -> Result<Results> {
        run_experiment(&self.experiment, &self.prepared, &self.dir, progress, stop)
    }
}

/// A run's `config.json`.
fn load(path: &Path) -> Result<Experiment> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Input {
        path: path.display().to_string(),
        line: Some(e.line()),
        message: format!("not JSON: {e}"),
    })?;
    Experiment::from_json(&v, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(out: PathBuf) -> TrainRequest {
        let mut recipe = Recipe::for_task(Task::Qa, false);
        recipe.preset = "gpt-micro".into();
        TrainRequest {
            recipe,
            activations: Vec::new(),
            seeds: 1,
            device: Device::Cpu,
            checkpoint_every: 0,
            samples: 0,
            out: Some(out),
            command: vec!["test".into()],
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("actforge-session-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A refused request names the setting and leaves no directory; a
    /// created run holds its lock and resumes to the same settings.
    #[test]
    fn a_session_is_made_whole_or_not_at_all_and_resumes_as_made() {
        let out = tmp("made");
        let e = Session::create(TrainRequest {
            seeds: 0,
            ..request(out.clone())
        })
        .err()
        .expect("refused");
        let Error::Setting(named) = &e else {
            panic!("{e}")
        };
        assert_eq!(named.settings(), vec![Setting::Seeds]);
        assert!(!out.exists());
        let s = Session::create(request(out.clone())).unwrap();
        assert_eq!(
            s.experiment().activations,
            default_activations(Task::Qa),
            "no activation named: GELU and the seed formula"
        );
        assert!(out.join("config.json").is_file());
        // This process holds the lock: a second session is refused.
        assert!(Session::resume(&out).is_err());
        let settings = s.experiment().settings_hash();
        drop(s);
        let again = Session::resume(&out).unwrap();
        assert_eq!(again.experiment().settings_hash(), settings);
        drop(again);
        std::fs::remove_dir_all(&out).unwrap();
        let e = Session::resume(&out).err().expect("no run there");
        assert!(e.to_string().contains("not an actforge train run"), "{e}");
    }
}
