//! Experiments: several activations trained over several seeds by one
//! recipe, side by side, with statistics: what `actforge train` runs and
//! what the search uses to retrain its hall of fame against GELU.
//!
//! A run directory holds `config.json` (the command, recipe, activations,
//! seeds, versions), `runs.jsonl` (one line per finished run, flushed), a
//! checkpoint folder per unfinished run, and at the end `results.json`,
//! `results.csv` and the learning-curve PNG. Resuming skips the finished
//! runs and continues the unfinished one from its checkpoint.
//!
//! Sits above `fitness` (one run) and below `search`; knows nothing of the
//! GP.
//!
//! - [`spec`]: what to compare ([`Experiment`]) and how specs are read;
//! - [`run`]: running or resuming it ([`run_experiment`]);
//! - [`results`]: the summary over seeds;
//! - [`files`]: `results.json`, `results.csv`, the learning curves;
//! - [`tables`]: the text tables.

pub mod files;
pub mod results;
pub mod run;
pub mod spec;
pub mod tables;

pub use files::curves;
pub use results::{summarize_runs, Results, METRICS};
pub use run::{run_experiment, Progress, Quiet};
pub use spec::{parse_activation, parse_device, versions, Experiment, RESULTS_FORMAT};
pub use tables::tables;
