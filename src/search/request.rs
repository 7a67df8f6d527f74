//! What a user asks of a new search, before any default is resolved: the
//! plain values of `actforge search`'s flags (or of a library caller),
//! with `None` where the default depends on something else.
//! [`Request::resolve`] is the one place that resolves them (λ from μ,
//! crossover and mutation rates from the algorithm, the mutations from the
//! ephemeral constant, the device by probing, lockstep from the device and
//! the preset, racing against fixed seeds) into typed [`Settings`]; the
//! constant defaults are [`defaults`]. It knows no flag: errors name
//! settings.

use crate::device::Device;
use crate::error::Result;
use crate::fitness::Task;
use crate::gp::sets::SetSpec;
use crate::gp::Mutation;
use crate::metrics::Weights;
use crate::runtime::Arch;

use super::config::{
    default_mutations, defaults, Algorithm, EvaluatorKind, Objective, SelectionKind, Settings,
    TrainSettings,
};
use super::lockstep::Lockstep;
use super::seeding::{Racing, Seeding};
use super::training::resolve_device;

/// The selection scheme asked for; its sizes are [`Request`]'s
/// `tournament_size` and `parsimony`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    Tournament,
    DoubleTournament,
}

/// See the module docs. [`Request::default`] asks for nothing: every
/// setting takes its default.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub task: Task,
    pub primitives: SetSpec,
    pub ephemeral: Option<String>,
    pub include_known: bool,
    pub start_with: Vec<String>,
    pub pop: usize,
    /// `None`: μ.
    pub lambda: Option<usize>,
    pub gens: usize,
    pub algorithm: Algorithm,
    pub selection: Selection,
    pub tournament_size: usize,
    pub parsimony: f64,
    pub elite: usize,
    /// `None`: the algorithm's ([`defaults::rates`]).
    pub cxpb: Option<f64>,
    pub mutpb: Option<f64>,
    /// `None`: [`default_mutations`] (with ephemeral-one when there is an
    /// ephemeral constant).
    pub mutations: Option<Vec<Mutation>>,
    pub max_height: usize,
    pub max_size: Option<usize>,
    pub init_min: usize,
    pub init_max: usize,
    pub objective: Objective,
    pub fingerprint: bool,
    pub hof: usize,
    pub seed: u64,
    pub seeds: usize,
    pub steps: Option<usize>,
    pub batch_size: Option<usize>,
    pub thin: f64,
    pub weights: Option<Weights>,
    /// `None`: a GPU when this build has the `cuda` feature and one
    /// answers, else the CPU ([`resolve_device`]).
    pub device: Option<Device>,
    /// One worker per GPU was asked for (`--devices`): the run trains on
    /// `cuda`, whatever `device` says.
    pub per_gpu: bool,
    pub preset: Option<String>,
    pub compile_check: bool,
    pub arch: Arch,
    pub retrain_top: usize,
    pub retrain_seeds: usize,
    pub final_steps: Option<usize>,
    /// Racing on (up to `max_seeds`), or every candidate at the fixed
    /// `seeds`.
    pub racing: bool,
    pub max_seeds: usize,
    /// `None`: the device's default ([`Lockstep::from_flags`]).
    pub lockstep: Option<bool>,
    pub lockstep_size: Option<usize>,
    pub export: bool,
    pub evaluator: EvaluatorKind,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            task: defaults::TASK,
            primitives: SetSpec::Seed,
            ephemeral: None,
            include_known: false,
            start_with: Vec::new(),
            pop: defaults::POP,
            lambda: None,
            gens: defaults::GENS,
            algorithm: defaults::ALGORITHM,
            selection: Selection::Tournament,
            tournament_size: defaults::TOURNAMENT_SIZE,
            parsimony: defaults::PARSIMONY,
            elite: defaults::ELITE,
            cxpb: None,
            mutpb: None,
            mutations: None,
            max_height: defaults::MAX_HEIGHT,
            max_size: None,
            init_min: defaults::INIT_MIN,
            init_max: defaults::INIT_MAX,
            objective: defaults::OBJECTIVE,
            fingerprint: true,
            hof: defaults::HOF,
            seed: defaults::SEED,
            seeds: defaults::SEEDS,
            steps: None,
            batch_size: None,
            thin: defaults::THIN,
            weights: None,
            device: None,
            per_gpu: false,
            preset: None,
            compile_check: false,
            arch: defaults::ARCH,
            retrain_top: defaults::RETRAIN_TOP,
            retrain_seeds: defaults::RETRAIN_SEEDS,
            final_steps: None,
            racing: true,
            max_seeds: defaults::MAX_SEEDS,
            lockstep: None,
            lockstep_size: None,
            export: true,
            evaluator: EvaluatorKind::Train,
        }
    }
}

impl Request {
    /// The settings asked for, every default resolved, checked together
    /// ([`Settings::check`]).
    pub fn resolve(self) -> Result<Settings> {
        let (cx, mu) = defaults::rates(self.algorithm);
        let device = match (self.per_gpu, self.device) {
            (true, _) => Device::Cuda(None),
            (false, Some(d)) => d,
            (false, None) => resolve_device("auto")?,
        };
        let preset = self
            .preset
            .clone()
            .unwrap_or_else(|| self.task.default_preset(device.is_cuda()).to_string());
        let lockstep = Lockstep::from_flags(self.lockstep, self.lockstep_size, device, &preset)?;
        let s = Settings {
            mutations: self
                .mutations
                .unwrap_or_else(|| default_mutations(self.ephemeral.is_some())),
            primitives: self.primitives,
            ephemeral: self.ephemeral,
            include_known: self.include_known,
            start_with: self.start_with,
            pop: self.pop,
            lambda: self.lambda.unwrap_or(self.pop),
            gens: self.gens,
            algorithm: self.algorithm,
            selection: match self.selection {
                Selection::Tournament => SelectionKind::Tournament {
                    size: self.tournament_size,
                },
                Selection::DoubleTournament => SelectionKind::DoubleTournament {
                    fitness_size: self.tournament_size,
                    parsimony: self.parsimony,
                },
            },
            elite: self.elite,
            cxpb: self.cxpb.unwrap_or(cx),
            mutpb: self.mutpb.unwrap_or(mu),
            max_height: self.max_height,
            max_size: self.max_size,
            init_min: self.init_min,
            init_max: self.init_max,
            objective: self.objective,
            fingerprint: self.fingerprint,
            hof: self.hof,
            seed: self.seed,
            seeds: self.seeds,
            train: TrainSettings {
                task: self.task,
                steps: self.steps,
                batch_size: self.batch_size,
                thin: self.thin,
                device,
                preset: self.preset,
                weights: self.weights,
            },
            evaluator: self.evaluator,
            compile_check: self.compile_check,
            arch: self.arch,
            retrain_top: self.retrain_top,
            retrain_seeds: self.retrain_seeds,
            export: self.export,
            seeding: Seeding {
                final_steps: self.final_steps,
                racing: self.racing.then_some(Racing {
                    max_seeds: self.max_seeds,
                }),
            },
            lockstep,
        };
        s.check()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_cpu() -> Request {
        Request {
            device: Some(Device::Cpu),
            ..Request::default()
        }
    }

    /// Asking for nothing on the CPU gives the default settings: the
    /// constants are the same ones, and the dependent defaults agree.
    #[test]
    fn nothing_asked_is_the_defaults() {
        assert_eq!(on_cpu().resolve().unwrap(), Settings::default());
    }

    /// The defaults that depend on another setting.
    #[test]
    fn dependent_defaults_follow_what_they_depend_on() {
        let s = Request {
            pop: 7,
            algorithm: Algorithm::Simple,
            ephemeral: Some("int(-2,2)".into()),
            ..on_cpu()
        }
        .resolve()
        .unwrap();
        assert_eq!((s.lambda, s.cxpb, s.mutpb), (7, 0.5, 0.2));
        assert_eq!(s.mutations, default_mutations(true));
        let s = Request {
            lambda: Some(3),
            cxpb: Some(0.1),
            mutations: Some(vec![Mutation::Shrink]),
            ..on_cpu()
        }
        .resolve()
        .unwrap();
        assert_eq!((s.lambda, s.cxpb, s.mutpb), (3, 0.1, 0.3));
        assert_eq!(s.mutations, vec![Mutation::Shrink]);
        // One worker per GPU trains on cuda, with the GPU's lockstep.
        let s = Request {
            per_gpu: true,
            ..on_cpu()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.train.device, Device::Cuda(None));
        let preset = Task::Qa.default_preset(true);
        assert_eq!(s.lockstep, Lockstep::default_for(s.train.device, preset));
        assert_ne!(s.lockstep, Lockstep::Off);
        // Fixed seeds without racing; racing with fixed seeds is refused.
        let s = Request {
            racing: false,
            seeds: 3,
            ..on_cpu()
        }
        .resolve()
        .unwrap();
        assert_eq!((s.seeding.racing, s.seeds), (None, 3));
        assert!(Request {
            seeds: 3,
            ..on_cpu()
        }
        .resolve()
        .is_err());
    }
}
