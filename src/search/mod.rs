//! The GP engine: population, selection, elitism, hall of fame, NSGA-II,
//! dedup by meaning, screening, batch evaluation through executors,
//! checkpoints and resume, and the run directory's outputs.
//!
//! * the pure operators it drives live in [`crate::gp`] (objectives,
//!   selection, NSGA-II, the hall of fame and the Pareto front);
//! * the engine: [`engine::Search`] (generation loop, checkpoints,
//!   resume) with [`assign`] (dedup, screening, batch compile,
//!   evaluation), [`ledger`] (the fitness cache and its logs), [`dedup`],
//!   [`screen`], [`compile`] and [`scheme`] (who survives);
//! * [`candidate::Candidate`]: a formula built once (key, text, function)
//!   when the engine classifies it; everything after takes it;
//! * where candidates are evaluated ([`exec`]: `Job`, `JobResult`,
//!   `Evaluate`, `Executor`, threads, worker processes, Ray and the
//!   `eval-candidates` side) and the evaluators ([`evaluator`]:
//!   [`training`], the `train` recipe, and [`synthetic`]); the final
//!   comparison ([`retrain`]);
//! * the run directory ([`run`]: files, state, records, logbook, outputs,
//!   the report page).
//!
//! `search` sits at the top of the library pipeline: it may use every
//! module below it (the genome is [`crate::gp`]) but nothing in `cli`.

pub mod assign;
pub mod candidate;
pub mod compile;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod evaluator;
pub mod exec;
pub mod json;
pub mod ledger;
pub mod lockstep;
pub mod progress;
pub mod racing;
pub mod request;
pub mod retrain;
pub mod rounds;
pub mod run;
pub mod rung;
pub mod scheme;
pub mod screen;
pub mod seeding;
pub mod session;
pub mod synthetic;
pub mod training;
pub mod trials;

pub use config::Settings;
pub use engine::{Opened, Outcome, Search};
pub use exec::{Evaluate, Executor, InProcess, Job, JobResult};
pub use request::Request;
pub use session::Session;
