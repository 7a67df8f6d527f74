//! Choosing the evaluator of a run from its settings: the training recipe
//! (`crate::fitness`, merged separately) or the synthetic stand-in.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ir::Library;

use super::config::{EvaluatorKind, Settings};
use super::executor::Evaluate;
use super::retrain::Retrain;
use super::synthetic::Synthetic;

/// The evaluator of candidates and the trainer of the final comparison.
pub struct Evaluators {
    pub evaluate: Arc<dyn Evaluate>,
    pub retrain: Box<dyn Retrain>,
}

/// The evaluators `settings` ask for; formulas are read with `library`.
pub fn evaluators(settings: &Settings, library: Arc<Library>) -> Result<Evaluators> {
    match settings.evaluator {
        EvaluatorKind::Synthetic { sleep_ms } => Ok(Evaluators {
            evaluate: Arc::new(Synthetic::new(library.clone(), sleep_ms)),
            retrain: Box::new(Synthetic::new(library, 0)),
        }),
        // FITNESS: the real evaluator plugs in here. Build the recipe from
        // `settings.train` (`fitness::Recipe::for_task(task, gpu)` with
        // steps/thin/preset overrides), `Prepared::new(&recipe)` once per
        // process (data and tokenizer shared by all workers), and implement
        // `Evaluate` as: parse `job.formula` into `op::Activation::Fused`,
        // `fitness::run(&prepared, &act, seed, &device, &opts)` for each of
        // `job.seeds`, fitness = mean of `outcome.fitness()` (any `None`:
        // a failure with the outcome's reason), metrics = the outcomes'
        // `to_json()`. `Retrain` wraps `fitness::compare::run_experiment`
        // on the full data.
        EvaluatorKind::Train => Err(Error::Missing {
            what: "the training evaluator".into(),
            detail: "`crate::fitness` (the `train` recipe) is not part of this build yet".into(),
            hint: "run the engine with the synthetic evaluator: `actforge search --evaluator synthetic`".into(),
        }),
    }
}
