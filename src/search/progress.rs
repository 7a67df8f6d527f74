//! What a search reports while it runs, for whoever draws it (the `cli`
//! draws bars and lines; the library draws nothing): the engine's events
//! ([`Observer`], with [`Silent`]) and a training evaluator's
//! ([`TrainingObserver`]: each job's steps, and lines of the final
//! retrain).

use super::run::logbook::Row;
use super::run::record::Record;

/// Events of a running search.
pub trait Observer {
    /// Generation `gen` (of `last`) starts with `candidates` formulas to
    /// evaluate.
    fn generation_started(&mut self, gen: usize, last: usize, candidates: usize);
    /// A racing batch of generation `gen` starts: `jobs` candidate-seeds at
    /// training seed `seed` (the baseline's and the rungs'). By default a
    /// batch is drawn like a generation's start.
    fn seed_batch_started(&mut self, gen: usize, last: usize, seed: u64, jobs: usize) {
        let _ = seed;
        self.generation_started(gen, last, jobs);
    }
    /// One evaluation (or recovered result) is in.
    fn candidate_done(&mut self, record: &Record);
    fn generation_done(&mut self, row: &Row);
    /// A message for the user (resume notes, warnings).
    fn note(&mut self, message: &str);
    fn finish(&mut self) {}
}

/// Reports nothing.
pub struct Silent;

impl Observer for Silent {
    fn generation_started(&mut self, _: usize, _: usize, _: usize) {}
    fn candidate_done(&mut self, _: &Record) {}
    fn generation_done(&mut self, _: &Row) {}
    fn note(&mut self, _: &str) {}
}

/// Events of the training evaluator, from every worker thread at once.
pub trait TrainingObserver: Send + Sync {
    /// A job of `formula` starts, `steps` training steps per seed; what it
    /// returns follows that job and ends with it (when dropped).
    fn job_started(&self, formula: &str, steps: u64) -> Box<dyn JobObserver>;
    /// A line for the user (the final retrain's runs).
    fn line(&self, text: &str);
}

/// One job's training, as it goes.
pub trait JobObserver: Send + Sync {
    /// Seed `seed` starts (at step 0).
    fn seed_started(&self, seed: u64);
    /// Step `step` of the current seed is done.
    fn step(&self, step: u64);
}
