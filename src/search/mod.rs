//! The GP engine: population, selection, elitism, hall of fame, NSGA-II,
//! dedup by meaning, screening, batch evaluation through executors,
//! checkpoints and resume, and the run directory's outputs.
//!
//! * pure operators: fitness as plain `f64` vectors with a direction per
//!   objective ([`objectives`]), tournament, double tournament and best
//!   selection ([`select`]), NSGA-II ([`nsga2`]), the hall of fame and the
//!   Pareto front archive ([`archive`]);
//! * the engine: [`engine::Search`] (run directory, generation loop,
//!   checkpoints, resume) with [`assign`] (dedup, screening, batch
//!   compile, evaluation), [`scheme`] (who survives), [`outputs`];
//! * the batch interface ([`executor`]: `Job`, `JobResult`, `Evaluate`,
//!   `Executor`, the in-process executor) and its evaluators
//!   ([`evaluator`]: [`training`], the `train` recipe, and [`synthetic`]);
//!   the final comparison ([`retrain`]).
//!
//! `search` sits at the top of the library pipeline: it may use every
//! module below it (the genome is [`crate::gp`]) but nothing in `cli`.

pub mod archive;
pub mod assign;
pub mod batch;
pub mod candidates;
pub mod compile;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod evaluator;
pub mod exec_process;
pub mod exec_ray;
pub mod executor;
pub mod json;
pub mod launch;
pub mod logbook;
pub mod nsga2;
pub mod objectives;
pub mod outputs;
pub mod page;
pub mod progress;
pub mod record;
pub mod retrain;
pub mod rundir;
pub mod scheme;
pub mod screen;
pub mod select;
pub mod state;
pub mod synthetic;
pub mod training;

pub use config::Settings;
pub use engine::{Opened, Outcome, Search};
pub use executor::{Evaluate, Executor, InProcess, Job, JobResult};
