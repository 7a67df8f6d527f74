//! How a search spends training seeds: on its candidates during the
//! search (fixed `--seeds`, or racing up to `--max-seeds`, see
//! [`super::racing`]), and on the held-out verdict at the end
//! (`--final-steps`, `--retrain-seeds`). One typed value, one field of the
//! settings (`"seeding"` in `config.json`), absent from the JSON while it
//! has the values runs had before it existed, so their settings hash is
//! unchanged; each key inside it is likewise written only when it differs
//! from the legacy value (`"racing"` only with racing on).
//!
//! The final verdict's seeds are disjoint from every training seed of the
//! search by construction ([`final_seeds`]) and checked against the
//! evaluations log before anything trains (`run::outputs`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::Result;

/// See the module docs. In JSON `"final_steps"` is always written (as
/// before racing existed), `"racing": {"max_seeds"}` only with racing on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeding {
    /// Training steps of the final verdict's runs (`None`: the task
    /// recipe's full length, 300 on the CPU and 2,000 on a GPU).
    #[serde(default)]
    pub final_steps: Option<usize>,
    /// Racing seeds onto contenders (`None`: every candidate trains with
    /// the fixed `--seeds`, as runs did before racing existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub racing: Option<Racing>,
}

/// The racing settings (see [`super::racing`] for the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Racing {
    /// The most seeds a candidate can earn (`--max-seeds`).
    pub max_seeds: usize,
}

/// The most seeds a raced candidate can earn by default (`--max-seeds`):
/// see the README's "Racing" for the measurement that chose it.
pub const MAX_SEEDS: usize = 4;

impl Seeding {
    /// A new search's values: racing up to [`MAX_SEEDS`] seeds, the final
    /// verdict at the recipe's full length.
    pub const DEFAULT: Seeding = Seeding {
        final_steps: None,
        racing: Some(Racing {
            max_seeds: MAX_SEEDS,
        }),
    };

    /// The values of runs made before this setting existed.
    pub const LEGACY: Seeding = Seeding {
        final_steps: None,
        racing: None,
    };

    /// `None` for [`Seeding::LEGACY`] (the key is left out of the
    /// settings), else the object: `"final_steps"` always (as before
    /// racing existed), `"racing": {"max_seeds"}` only with racing on.
    pub fn to_json(&self) -> Option<Value> {
        (!self.is_legacy()).then(|| serde_json::to_value(self).expect("plain data"))
    }

    /// Whether these are the values of runs made before this setting
    /// existed (the settings leave the key out).
    pub fn is_legacy(&self) -> bool {
        *self == Seeding::LEGACY
    }

    /// Serde for the settings' `"seeding"` key: absent or `null` is
    /// [`Seeding::LEGACY`].
    pub fn or_legacy<'de, D: Deserializer<'de>>(d: D) -> Result<Seeding, D::Error> {
        Ok(Option::<Seeding>::deserialize(d)?.unwrap_or(Seeding::LEGACY))
    }

    /// [`Seeding::LEGACY`], for serde's `default`.
    pub fn legacy() -> Seeding {
        Seeding::LEGACY
    }

    /// The most training seeds a candidate can get: `--max-seeds` with
    /// racing, else `fixed` (the run's `--seeds`).
    pub fn max_training_seeds(&self, fixed: usize) -> usize {
        self.racing.map_or(fixed, |r| r.max_seeds)
    }

    /// Read [`Seeding::to_json`]; an absent key is [`Seeding::LEGACY`].
    pub fn from_json(v: Option<&Value>, file: &str) -> Result<Seeding> {
        match v.filter(|v| !v.is_null()) {
            None => Ok(Seeding::LEGACY),
            Some(v) => super::json::typed(v, file, "`seeding`"),
        }
    }

    /// Check the values against their limits (`--final-steps`,
    /// `--max-seeds`); `seeds` is the run's `--seeds`, which racing
    /// replaces (a raced candidate starts at one seed).
    pub fn check(&self, seeds: usize) -> Result<()> {
        use crate::error::{Error, Setting};
        if let Some(r) = self.racing {
            if r.max_seeds == 0 {
                return Err(Error::setting(format!(
                    "{} must be at least 1",
                    Setting::MaxSeeds
                )));
            }
            crate::limits::SEEDS.check_usize(Setting::MaxSeeds, r.max_seeds)?;
            if seeds != 1 {
                let (s, m) = (Setting::Seeds, Setting::MaxSeeds);
                return Err(Error::setting(format!(
                    "{s} {seeds} trains every candidate with {seeds} fixed seeds, but racing gives a new candidate one seed and more up to {m}: give {s} without {m}, or {m} {seeds} alone"
                )));
            }
        }
        if let Some(s) = self.final_steps {
            if s == 0 {
                return Err(Error::setting(format!(
                    "{} must be at least 1",
                    Setting::FinalSteps
                )));
            }
            crate::limits::STEPS.check_usize(Setting::FinalSteps, s)?;
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
            racing: None,
        };
        let v = s.to_json().unwrap();
        // A run made before racing existed writes what it wrote then.
        assert_eq!(v.to_string(), r#"{"final_steps":40}"#);
        assert_eq!(Seeding::from_json(Some(&v), "config.json").unwrap(), s);
        assert!(Seeding {
            final_steps: Some(0),
            racing: None,
        }
        .check(1)
        .is_err());
    }

    #[test]
    fn racing_round_trips_and_is_checked() {
        let s = Seeding {
            final_steps: None,
            racing: Some(Racing { max_seeds: 4 }),
        };
        let v = s.to_json().unwrap();
        assert_eq!(
            v.to_string(),
            r#"{"final_steps":null,"racing":{"max_seeds":4}}"#
        );
        assert_eq!(Seeding::from_json(Some(&v), "config.json").unwrap(), s);
        assert_eq!(s.max_training_seeds(1), 4);
        assert_eq!(Seeding::LEGACY.max_training_seeds(3), 3);
        s.check(1).unwrap();
        // As the command line shows the errors (settings as flags).
        let shown = |e: crate::error::Error| crate::cli::flags::render(&e);
        let e = shown(s.check(3).unwrap_err());
        assert!(
            e.contains("without --max-seeds") && e.contains("--max-seeds 3 alone"),
            "{e}"
        );
        let zero = Seeding {
            racing: Some(Racing { max_seeds: 0 }),
            ..s
        };
        assert!(shown(zero.check(1).unwrap_err()).contains("--max-seeds"));
        let huge = Seeding {
            racing: Some(Racing { max_seeds: 100_000 }),
            ..s
        };
        // A limit names the setting; the command line spells it as a flag.
        assert!(shown(huge.check(1).unwrap_err()).contains("--max-seeds 100000 is above the limit"));
        let bad = serde_json::json!({"final_steps": null, "racing": {"max_seeds": "four"}});
        assert!(Seeding::from_json(Some(&bad), "config.json").is_err());
    }
}
