//! Choosing the evaluator of a run from its settings: the training recipe
//! ([`super::training`]) or the synthetic stand-in.

use std::sync::Arc;

use std::path::Path;

use crate::error::Result;
use crate::ir::Library;

use super::config::{EvaluatorKind, Settings};
use super::exec::executor::Evaluate;
use super::progress::TrainingObserver;
use super::retrain::{Entrant, Plan, Retrain, Retrained};
use super::synthetic::Synthetic;
use super::training::Training;

/// The evaluator of candidates and the trainer of the final comparison.
pub struct Evaluators {
    pub evaluate: Arc<dyn Evaluate>,
    pub retrain: Box<dyn Retrain>,
}

/// The evaluators `settings` ask for; formulas are read with `library`.
///
/// The training evaluator prepares its data here (corpus, tokenizer,
/// thinning), so a missing corpus or device is reported before a run
/// directory is made. `observer` hears of its training steps and lines.
pub fn evaluators(
    settings: &Settings,
    library: Arc<Library>,
    observer: Option<Arc<dyn TrainingObserver>>,
) -> Result<Evaluators> {
    match settings.evaluator {
        EvaluatorKind::Synthetic { sleep_ms } => Ok(Evaluators {
            evaluate: Arc::new(Synthetic::new(sleep_ms)),
            retrain: Box::new(Synthetic::new(0)),
        }),
        EvaluatorKind::Train => {
            let t = Arc::new(Training::new(&settings.train, library, observer)?);
            Ok(Evaluators {
                evaluate: t.clone(),
                retrain: Box::new(ArcRetrain(t)),
            })
        }
    }
}

/// The shared trainer as the final comparison's `Retrain`.
struct ArcRetrain(Arc<Training>);

impl Retrain for ArcRetrain {
    fn retrain(&self, entrants: &[Entrant], plan: &Plan, dir: &Path) -> Result<Retrained> {
        self.0.retrain(entrants, plan, dir)
    }
}
