//! Experiments: several activations trained over several seeds by one
//! recipe, side by side, with statistics: what `actforge train` runs and
//! what the search uses to retrain its hall of fame against GELU.
//!
//! A run directory holds `config.json` (the command, recipe, activations,
//! seeds, versions, a description of the prepared data, and the hash of
//! all but the command and versions), `runs.jsonl` (one line per finished
//! run, flushed), a checkpoint folder per unfinished run, and at the end
//! `results.json`, `results.csv` and the learning-curve PNG. Resuming
//! checks the settings against their hash and the data against its
//! description, skips the finished runs and continues the unfinished one
//! from its checkpoint.
//!
//! Sits above `fitness` (one run) and below `search`; knows nothing of the
//! GP.
//!
//! - [`spec`]: what to compare ([`Experiment`]) and how specs are read;
//! - [`run`]: running or resuming it ([`run_experiment`]);
//! - [`paired`]: paired differences from a baseline, Holm, verdicts,
//!   resolution (per-seed values in, typed outcomes out);
//! - [`results`]: the summary over seeds, failures counted;
//! - [`files`]: `results.json`, `results.csv`, the learning curves;
//! - [`session`]: a `train` run as one value: a new one (checked, data
//!   prepared, directory made whole) or a resumed one, then run;
//! - [`page`]: the report page of a train run directory (plain data for
//!   `report::html`).

pub mod files;
pub mod page;
pub mod paired;
pub mod results;
pub mod run;
pub mod session;
pub mod spec;

pub use files::curves;
pub use paired::{against_baseline, difference, differences, Difference, Verdict, ALPHA, POWER};
pub use results::{per_seed, scored_fitness, summarize_runs, ActivationSummary, Results, METRICS};
pub use run::{run_built, run_built_on, run_experiment, Progress, Quiet};
pub use session::{Session, TrainRequest};
pub use spec::{
    check_data, label, parse_activation, versions, Experiment, GELU_LABEL, RESULTS_FORMAT,
};
