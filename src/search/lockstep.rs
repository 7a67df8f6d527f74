//! Lockstep training in the search (`--lockstep`, `--lockstep-size K`):
//! the candidate-seeds of one executor batch that share their seeds train
//! as populations of up to K members (`fitness::lockstep_functions`), one
//! population a job group on one worker ([`super::exec::executor::groups`]
//! cuts a batch into them).
//!
//! One typed value, one field of the settings (`"lockstep"` in
//! `config.json`), absent from the JSON while it is [`Lockstep::LEGACY`]
//! (one by one, as runs trained before it existed), so their settings
//! hash is unchanged. It is part of the hash when on: a lockstep member's
//! step is its one-by-one step up to rounding (the gradient norm's
//! summation order, batched matmuls), not bit for bit, and over a run the
//! difference grows as any perturbation of training does (1e-4 relative
//! and below over a few steps; at the CPU's 150 steps, measured, a median
//! of 8e-4 and at most 2 % of the fitness), so a run's results depend on
//! it (and `--resume` keeps the run's).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::Device;
use crate::error::{Error, Result, Setting};

use super::exec::executor::{groups, Job};

/// See the module docs. In JSON `{"size": K}` when on; `null` (and an
/// absent key, which is how the settings write it) when off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Option<Members>", into = "Option<Members>")]
pub enum Lockstep {
    /// Every candidate-seed trains as a model of its own.
    #[default]
    Off,
    /// Populations of up to `size` candidate-seeds.
    On { size: usize },
}

/// The JSON of [`Lockstep::On`].
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Members {
    size: usize,
}

impl From<Option<Members>> for Lockstep {
    fn from(m: Option<Members>) -> Lockstep {
        m.map_or(Lockstep::Off, |m| Lockstep::On { size: m.size })
    }
}

impl From<Lockstep> for Option<Members> {
    fn from(l: Lockstep) -> Option<Members> {
        match l {
            Lockstep::Off => None,
            Lockstep::On { size } => Some(Members { size }),
        }
    }
}

/// The most members of a population (`--lockstep` with no
/// `--lockstep-size`): all of a batch up to this many, or fewer where
/// memory says so ([`gpu_population`]).
pub const GPU_POPULATION: usize = 64;

/// GPU memory a search's populations may take by default (bytes): what
/// a 40 GB GPU leaves with room for the CUDA context and the allocator.
pub const GPU_BUDGET: f64 = 24e9;

/// The default population size for model `preset` with the GPU recipe
/// (batch 64, vocabulary 4000): [`GPU_BUDGET`] over one member's memory,
/// at most [`GPU_POPULATION`]. A member costs what one model costs: 16
/// bytes a parameter (the parameter, its gradient, two AdamW moments) and
/// its activations, mostly the logits `[B·T, V]` in f32 with their softmax
/// and gradient (3 × 4 bytes × 64 × T × 4000) and the MLP's `[B·T, F]` per
/// layer. Estimated from the shapes at full length T, not measured on a
/// GPU: gpt-micro and t5-tiny about 0.4 GB (60 members), gpt-tiny about
/// 1 GB (24), t5-small about 2.6 GB (9: 60 M parameters); another preset 8.
pub fn gpu_population(preset: &str) -> usize {
    let member_gb: f64 = match preset {
        "gpt-micro" | "t5-tiny" => 0.4,
        "gpt-tiny" => 1.0,
        "t5-small" => 2.6,
        _ => return 8,
    };
    ((GPU_BUDGET / (member_gb * 1e9)) as usize).clamp(1, GPU_POPULATION)
}

/// The CPU's default population size: measured (see the README's "Lockstep
/// in the search"): with two cores, two workers each training one
/// candidate on one thread beat one worker training a population on two.
pub const CPU_DEFAULT: Lockstep = Lockstep::Off;

/// Highest `--lockstep-size`.
pub const MAX_SIZE: usize = 1024;

impl Lockstep {
    /// The value of runs made before lockstep existed.
    pub const LEGACY: Lockstep = Lockstep::Off;

    /// The default on `device` for model `preset`: on a GPU populations
    /// of a whole batch up to [`gpu_population`]; on the CPU
    /// [`CPU_DEFAULT`].
    pub fn default_for(device: Device, preset: &str) -> Lockstep {
        if device.is_cpu() {
            CPU_DEFAULT
        } else {
            Lockstep::On {
                size: gpu_population(preset),
            }
        }
    }

    /// What the flags ask for: `--lockstep` / `--no-lockstep` (neither:
    /// the device's default) and `--lockstep-size K` (default: the whole
    /// batch up to [`gpu_population`] of `preset`, on a GPU or the CPU).
    pub fn from_flags(
        on: Option<bool>,
        size: Option<usize>,
        device: Device,
        preset: &str,
    ) -> Result<Lockstep> {
        let default = Lockstep::default_for(device, preset);
        let on = on.unwrap_or(size.is_some() || default != Lockstep::Off);
        let l = match (on, size) {
            (false, Some(_)) => {
                let (size, on, off) = (
                    Setting::LockstepSize,
                    Setting::Lockstep,
                    Setting::NoLockstep,
                );
                return Err(Error::setting(format!(
                    "{size} sets the population of {on}: drop it or {off}"
                )));
            }
            (false, None) => Lockstep::Off,
            (true, Some(size)) => Lockstep::On { size },
            (true, None) => Lockstep::On {
                size: gpu_population(preset),
            },
        };
        l.check()?;
        Ok(l)
    }

    /// How many candidate-seeds train as one population (1: one by one).
    pub fn size(&self) -> usize {
        match self {
            Lockstep::Off => 1,
            Lockstep::On { size } => *size,
        }
    }

    /// Cut an executor batch into the groups that train together (one by
    /// one when off, else [`groups`] of at most `size`), formed over the
    /// whole batch, then without the jobs `done` already (recovered from
    /// the log after a crash): a resumed batch trains what is left in the
    /// populations the uninterrupted run trained it in. A member's bits
    /// depend on its companions, so the groups depend on the batch and
    /// the size only, never on the worker count.
    pub fn groups(&self, jobs: Vec<Job>, done: impl Fn(&Job) -> bool) -> Vec<Vec<Job>> {
        groups(jobs, self.size())
            .into_iter()
            .map(|g| g.into_iter().filter(|j| !done(j)).collect::<Vec<_>>())
            .filter(|g| !g.is_empty())
            .collect()
    }

    /// Check the size against its limits (`--lockstep-size`).
    pub fn check(&self) -> Result<()> {
        if let Lockstep::On { size } = *self {
            if size == 0 || size > MAX_SIZE {
                return Err(Error::setting(format!(
                    "{} must be in 1..={MAX_SIZE}, not {size}",
                    Setting::LockstepSize
                )));
            }
        }
        Ok(())
    }

    /// `None` for [`Lockstep::LEGACY`] (the key is left out of the
    /// settings), else `{"size": K}`.
    pub fn to_json(&self) -> Option<Value> {
        (!self.is_off()).then(|| serde_json::to_value(self).expect("plain data"))
    }

    /// Whether it is off ([`Lockstep::LEGACY`]: the settings leave the key
    /// out).
    pub fn is_off(&self) -> bool {
        *self == Lockstep::Off
    }

    /// Read [`Lockstep::to_json`]; an absent key is [`Lockstep::LEGACY`].
    pub fn from_json(v: Option<&Value>, file: &str) -> Result<Lockstep> {
        match v {
            None => Ok(Lockstep::LEGACY),
            Some(v) => super::json::typed(v, file, "`lockstep`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_is_absent_and_on_round_trips() {
        assert_eq!(Lockstep::LEGACY.to_json(), None);
        assert_eq!(
            Lockstep::from_json(None, "config.json").unwrap(),
            Lockstep::Off
        );
        let on = Lockstep::On { size: 8 };
        let v = on.to_json().unwrap();
        assert_eq!(v.to_string(), r#"{"size":8}"#);
        assert_eq!(Lockstep::from_json(Some(&v), "config.json").unwrap(), on);
        let bad = json!({"size": "eight"});
        assert!(Lockstep::from_json(Some(&bad), "config.json").is_err());
    }

    #[test]
    fn flags_resolve_against_the_device() {
        let cpu = Device::Cpu;
        let gpu = Device::Cuda(None);
        let m = "gpt-micro";
        let on = |size| Lockstep::On { size };
        assert_eq!(
            Lockstep::from_flags(None, None, cpu, m).unwrap(),
            CPU_DEFAULT
        );
        assert_eq!(Lockstep::from_flags(None, None, gpu, m).unwrap(), on(60));
        assert_eq!(
            Lockstep::from_flags(None, None, gpu, "t5-small").unwrap(),
            on(9)
        );
        assert_eq!(gpu_population("gpt-tiny"), 24);
        assert_eq!(gpu_population("some-hf-config"), 8);
        assert_eq!(
            Lockstep::from_flags(Some(false), None, gpu, m).unwrap(),
            Lockstep::Off
        );
        assert_eq!(
            Lockstep::from_flags(Some(true), None, cpu, m).unwrap(),
            on(60)
        );
        assert_eq!(Lockstep::from_flags(None, Some(4), cpu, m).unwrap(), on(4));
        for (on, size) in [(Some(false), Some(4)), (None, Some(0)), (None, Some(5000))] {
            // As the command line shows it (settings as flags).
            let e = crate::cli::flags::render(&Lockstep::from_flags(on, size, cpu, m).unwrap_err());
            assert!(e.contains("--lockstep-size"), "{e}");
        }
        assert_eq!(Lockstep::Off.size(), 1);
        assert_eq!(Lockstep::On { size: 3 }.size(), 3);
    }
}
