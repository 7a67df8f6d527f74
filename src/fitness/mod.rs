//! Fitness: the one training recipe (optimizer, schedule, common random
//! numbers, checkpoints), evaluation, and the weighted score. NaN/Inf is a
//! scored failure, never an error.
//!
//! - [`Recipe`]: every setting that decides what a fitness number means;
//! - [`Prepared`]: the data of a recipe, built once and shared by runs;
//! - [`run`]: train one activation from one seed and evaluate it;
//! - [`lockstep`]: train K activations from one seed as one population
//!   model, one [`Outcome`] per member, each its one-by-one run's.
//!
//! Comparisons of several activations over several seeds live one room
//! up, in `crate::experiment`.

pub mod alloc;
pub mod checkpoint;
pub mod evaluate;
pub mod lockstep;
pub mod optim;
pub mod prepare;
pub mod recipe;
pub mod run;

pub use evaluate::{Evaluation, Sample};
pub use lockstep::{lockstep, lockstep_functions};
pub use prepare::{Holdout, Prepared, Thinning};
pub use recipe::{Length, Recipe, Task};
pub use run::{run, CheckpointPlan, Outcome, RunOptions, Status, StepInfo, Timing};
