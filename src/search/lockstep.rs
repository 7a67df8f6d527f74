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

use serde_json::{json, Value};

use crate::device::Device;
use crate::error::{Error, Result};

use super::exec::executor::{groups, Job};
use super::json::Fields;

/// See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lockstep {
    /// Every candidate-seed trains as a model of its own.
    Off,
    /// Populations of up to `size` candidate-seeds.
    On { size: usize },
}

/// The largest population on a GPU by default (`--lockstep` with no
/// `--lockstep-size`): all of a batch up to this many. The bound is
/// memory: a member of a population costs what one model costs (its
/// parameters, their gradients and two AdamW moments, 16 bytes a
/// parameter, plus its activations), about 0.1 GB for the GPU recipes'
/// presets at their batch sizes (see the README's search section), so 64
/// members stay within 8 GB, which any training GPU has; a search's
/// batch (λ new candidates, then a rung's few) is rarely larger.
pub const GPU_POPULATION: usize = 64;

/// The CPU's default population size: measured (see the README's "Lockstep
/// in the search"): with two cores, two workers each training one
/// candidate on one thread beat one worker training a population on two.
pub const CPU_DEFAULT: Lockstep = Lockstep::Off;

/// Highest `--lockstep-size`.
pub const MAX_SIZE: usize = 1024;

impl Lockstep {
    /// The value of runs made before lockstep existed.
    pub const LEGACY: Lockstep = Lockstep::Off;

    /// The default on `device`: on a GPU populations of a whole batch
    /// (up to [`GPU_POPULATION`]); on the CPU [`CPU_DEFAULT`].
    pub fn default_for(device: Device) -> Lockstep {
        if device.is_cpu() {
            CPU_DEFAULT
        } else {
            Lockstep::On {
                size: GPU_POPULATION,
            }
        }
    }

    /// What the flags ask for: `--lockstep` / `--no-lockstep` (neither:
    /// the device's default) and `--lockstep-size K` (default: the whole
    /// batch up to [`GPU_POPULATION`] on a GPU, or on the CPU).
    pub fn from_flags(on: Option<bool>, size: Option<usize>, device: Device) -> Result<Lockstep> {
        let default = Lockstep::default_for(device);
        let on = on.unwrap_or(size.is_some() || default != Lockstep::Off);
        let l =
            match (on, size) {
                (false, Some(_)) => return Err(Error::Usage(
                    "--lockstep-size sets the population of --lockstep: drop it or --no-lockstep"
                        .into(),
                )),
                (false, None) => Lockstep::Off,
                (true, Some(size)) => Lockstep::On { size },
                (true, None) => Lockstep::On {
                    size: GPU_POPULATION,
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
                return Err(Error::Usage(format!(
                    "--lockstep-size must be in 1..={MAX_SIZE}, not {size}"
                )));
            }
        }
        Ok(())
    }

    /// `None` for [`Lockstep::LEGACY`] (the key is left out of the
    /// settings), else `{"size": K}`.
    pub fn to_json(&self) -> Option<Value> {
        match self {
            Lockstep::Off => None,
            Lockstep::On { size } => Some(json!({ "size": size })),
        }
    }

    /// Read [`Lockstep::to_json`]; an absent key is [`Lockstep::LEGACY`].
    pub fn from_json(v: Option<&Value>, file: &str) -> Result<Lockstep> {
        let Some(v) = v else {
            return Ok(Lockstep::LEGACY);
        };
        let f = Fields::of(v, file, "`lockstep`")?;
        Ok(Lockstep::On {
            size: f.usize("size")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Lockstep::from_flags(None, None, cpu).unwrap(), CPU_DEFAULT);
        assert_eq!(
            Lockstep::from_flags(None, None, gpu).unwrap(),
            Lockstep::On {
                size: GPU_POPULATION
            }
        );
        assert_eq!(
            Lockstep::from_flags(Some(false), None, gpu).unwrap(),
            Lockstep::Off
        );
        assert_eq!(
            Lockstep::from_flags(Some(true), None, cpu).unwrap(),
            Lockstep::On {
                size: GPU_POPULATION
            }
        );
        assert_eq!(
            Lockstep::from_flags(None, Some(4), cpu).unwrap(),
            Lockstep::On { size: 4 }
        );
        for (on, size) in [(Some(false), Some(4)), (None, Some(0)), (None, Some(5000))] {
            let e = Lockstep::from_flags(on, size, cpu).unwrap_err().to_string();
            assert!(e.contains("--lockstep-size"), "{e}");
        }
        assert_eq!(Lockstep::Off.size(), 1);
        assert_eq!(Lockstep::On { size: 3 }.size(), 3);
    }
}
