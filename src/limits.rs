//! The sizes actforge serves: one constant per limit, in one place. Flags
//! and the same values read from files (a run's `config.json`, whose
//! settings hash is not a signature; a batch line; a data file) are checked
//! against the same constant, before anything is allocated or created. A
//! value above its limit is a usage error (exit status 2) that names the
//! limit, as `bench` and `eval` do for their sizes.
//!
//! A leaf: imports only `error`.

use crate::error::{Error, Result, Setting};

/// One limit: the largest value served, and what it bounds (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub what: &'static str,
}

impl Limit {
    /// `Ok` when `value` is at most the limit; else a setting error naming
    /// `setting` (shown as its flag on the command line, as its key in a
    /// file).
    pub fn check(&self, setting: Setting, value: u64) -> Result<()> {
        if value <= self.max {
            return Ok(());
        }
        Err(Error::setting(format!(
            "{setting} {value} is above the limit of {} ({})",
            self.max, self.what
        )))
    }

    /// [`Limit::check`] of a `usize`.
    pub fn check_usize(&self, setting: Setting, value: usize) -> Result<()> {
        self.check(setting, value as u64)
    }
}

/// Tokens in a BPE vocabulary: the embedding and output layers grow with
/// it (2^18 covers the largest public vocabularies).
pub const VOCAB: Limit = Limit {
    max: 1 << 18,
    what: "tokens in a vocabulary",
};

/// Sequences in a training batch: activations grow with it; 1,024 is 16
/// times the GPU default.
pub const BATCH_SIZE: Limit = Limit {
    max: 1024,
    what: "sequences per training batch",
};

/// Optimizer steps of one training run (the loss of every step is kept
/// and checkpointed).
pub const STEPS: Limit = Limit {
    max: 1_000_000,
    what: "optimizer steps per training run",
};

/// Passes over the training data of one run.
pub const EPOCHS: Limit = Limit {
    max: 10_000,
    what: "epochs per training run",
};

/// Training seeds: per candidate of a search (and of a batch line), per
/// activation of `train`, and of a search's final retrain.
pub const SEEDS: Limit = Limit {
    max: 1000,
    what: "training seeds",
};

/// A search's population (μ) and offspring per generation (λ); also the
/// aspirants of a tournament.
pub const POPULATION: Limit = Limit {
    max: 100_000,
    what: "individuals per generation",
};

/// Generations of a search.
pub const GENERATIONS: Limit = Limit {
    max: 100_000,
    what: "generations",
};

/// Entries of the hall of fame (and of the final retrain).
pub const HALL_OF_FAME: Limit = Limit {
    max: 10_000,
    what: "hall-of-fame entries",
};

/// Workers of a search (threads or processes).
pub const WORKERS: Limit = Limit {
    max: 1024,
    what: "workers",
};

/// The synthetic evaluator's sleep per job (a developer's stand-in for
/// training time).
pub const SLEEP_MS: Limit = Limit {
    max: 60_000,
    what: "milliseconds of synthetic sleep per evaluation",
};

/// `--eval-timeout`, in seconds (a week).
pub const EVAL_TIMEOUT_SECONDS: Limit = Limit {
    max: 7 * 24 * 3600,
    what: "seconds of evaluation timeout",
};

/// A batch file of `eval-candidates` (it is read whole).
pub const BATCH_FILE_BYTES: Limit = Limit {
    max: 256 << 20,
    what: "bytes in a batch file",
};

/// A data file (it is read whole, then split into records).
pub const DATA_FILE_BYTES: Limit = Limit {
    max: 1 << 30,
    what: "bytes in a data file",
};

/// One record of a data file: a TSV or JSONL line, or a Q&A block with its
/// continuation lines (longer ones are skipped with a warning).
pub const RECORD_BYTES: Limit = Limit {
    max: 4096,
    what: "bytes per data record",
};

/// Every limit, for documentation and tests.
pub const ALL: [(&str, Limit); 14] = [
    ("VOCAB", VOCAB),
    ("BATCH_SIZE", BATCH_SIZE),
    ("STEPS", STEPS),
    ("EPOCHS", EPOCHS),
    ("SEEDS", SEEDS),
    ("POPULATION", POPULATION),
    ("GENERATIONS", GENERATIONS),
    ("HALL_OF_FAME", HALL_OF_FAME),
    ("WORKERS", WORKERS),
    ("SLEEP_MS", SLEEP_MS),
    ("EVAL_TIMEOUT_SECONDS", EVAL_TIMEOUT_SECONDS),
    ("BATCH_FILE_BYTES", BATCH_FILE_BYTES),
    ("DATA_FILE_BYTES", DATA_FILE_BYTES),
    ("RECORD_BYTES", RECORD_BYTES),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_above_a_limit_is_a_usage_error_naming_it() {
        SEEDS.check(Setting::Seeds, 1000).unwrap();
        let e = SEEDS.check(Setting::Seeds, 1001).unwrap_err();
        assert!(matches!(e, Error::Setting(_)));
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.render(|s| format!("--{}", s.key())),
            "error: --seeds 1001 is above the limit of 1000 (training seeds)"
        );
        assert_eq!(
            e.to_string(),
            "error: `seeds` 1001 is above the limit of 1000 (training seeds)"
        );
        assert!(ALL.iter().all(|(_, l)| l.max > 0 && !l.what.is_empty()));
    }
}
