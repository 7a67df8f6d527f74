//! How a search spends training seeds: on its candidates during the
//! search, and on the held-out verdict at the end (`--final-steps`,
//! `--retrain-seeds`). One typed value, one field of the settings
//! (`"seeding"` in `config.json`), absent from the JSON while it has the
//! values runs had before it existed, so their settings hash is unchanged.
//!
//! The final verdict's seeds are disjoint from every training seed of the
//! search by construction ([`final_seeds`]) and checked against the
//! evaluations log before anything trains (`run::outputs`).

use serde_json::{json, Value};

use crate::error::Result;

use super::json::Fields;

/// See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seeding {
    /// Training steps of the final verdict's runs (`None`: the task
    /// recipe's full length, 300 on the CPU and 2,000 on a GPU).
    pub final_steps: Option<usize>,
}

impl Seeding {
    /// The values of runs made before this setting existed.
    pub const LEGACY: Seeding = Seeding { final_steps: None };

    /// `None` for [`Seeding::LEGACY`] (the key is left out of the
    /// settings), else the object.
    pub fn to_json(&self) -> Option<Value> {
        (*self != Seeding::LEGACY).then(|| json!({"final_steps": self.final_steps}))
    }

    /// Read [`Seeding::to_json`]; an absent key is [`Seeding::LEGACY`].
    pub fn from_json(v: Option<&Value>, file: &str) -> Result<Seeding> {
        let Some(v) = v else {
            return Ok(Seeding::LEGACY);
        };
        let f = Fields::of(v, file, "`seeding`")?;
        let final_steps = match f.opt("final_steps") {
            None => None,
            Some(_) => Some(f.usize("final_steps")?),
        };
        Ok(Seeding { final_steps })
    }

    /// Check the values against their limits (`--final-steps`).
    pub fn check(&self) -> Result<()> {
        if let Some(s) = self.final_steps {
            if s == 0 {
                return Err(crate::error::Error::Usage(
                    "--final-steps must be at least 1".into(),
                ));
            }
            crate::limits::STEPS.check_usize("--final-steps", s)?;
        }
        Ok(())
    }
}

/// The final verdict's `n` seeds for a search seeded with `seed` whose
/// candidates train with at most `training` seeds (`seed`, `seed + 1`, …,
/// `seed + training - 1`): the `n` seeds that follow, so none of them is a
/// training seed of the search.
pub fn final_seeds(seed: u64, training: usize, n: usize) -> Vec<u64> {
    let first = seed.wrapping_add(training as u64);
    (0..n as u64).map(|i| first.wrapping_add(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_seeds_follow_the_training_seeds() {
        assert_eq!(final_seeds(0, 1, 3), vec![1, 2, 3]);
        assert_eq!(final_seeds(7, 4, 2), vec![11, 12]);
        let training: Vec<u64> = (0..5).map(|i| (u64::MAX - 1).wrapping_add(i)).collect();
        let fin = final_seeds(u64::MAX - 1, 5, 100);
        assert!(fin.iter().all(|s| !training.contains(s)));
    }

    #[test]
    fn legacy_values_leave_the_settings_unchanged() {
        assert_eq!(Seeding::LEGACY.to_json(), None);
        assert_eq!(
            Seeding::from_json(None, "config.json").unwrap(),
            Seeding::LEGACY
        );
        let s = Seeding {
            final_steps: Some(40),
        };
        let v = s.to_json().unwrap();
        assert_eq!(Seeding::from_json(Some(&v), "config.json").unwrap(), s);
        assert!(Seeding {
            final_steps: Some(0)
        }
        .check()
        .is_err());
    }
}
