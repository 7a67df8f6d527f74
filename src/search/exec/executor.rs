//! The batch interface between the engine and fitness evaluation.
//!
//! The engine hands an [`Executor`] a whole generation's new candidates
//! ([`Job`]s) at once and takes their [`JobResult`]s back in any order.
//! The result of a job must depend only on the job (its canonical key,
//! formula and training seeds), never on the worker that ran it or on the
//! order of completion: the engine applies results in job order, so a
//! seeded search reaches the same hall of fame with any number of workers.
//!
//! [`InProcess`] runs N worker threads that pull jobs from one queue. A
//! worker whose evaluation panics loses only that candidate: it is tried
//! once more, then scored as a failure with the panic's message. A raised
//! stop flag (Ctrl-C) makes workers take no new job; the jobs already
//! running finish and are reported, and `run` returns with the rest
//! undone.
//!
//! [`InProcess::per_worker`] gives each thread its own evaluator (one per
//! GPU). Worker processes ([`super::process`]) and Ray
//! ([`super::ray`]) implement [`Executor`] too; [`super::launch`]
//! chooses one.
//!
//! Imports nothing from the crate but `error` and the [`Candidate`].

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::search::candidate::Candidate;

/// One candidate to evaluate at some seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The candidate, built once (see [`Candidate`]).
    pub candidate: Candidate,
    /// Training seeds (common random numbers: the same for every
    /// candidate of a run); the fitness is the mean over them.
    pub seeds: Vec<u64>,
}

impl Job {
    /// The candidate's canonical key (the cache key).
    pub fn key(&self) -> u64 {
        self.candidate.key
    }

    /// The candidate's text (what crosses a process boundary).
    pub fn formula(&self) -> &str {
        &self.candidate.text
    }
}

/// What an evaluation gave.
#[derive(Clone, Debug, PartialEq)]
pub struct JobResult {
    pub key: u64,
    /// Higher is better; `None` is a failure (see `failure`).
    pub fitness: Option<f64>,
    /// Whatever the evaluator measured (losses, BLEU, timings, …).
    pub metrics: Map<String, Value>,
    /// Why the evaluation failed (NaN loss, compile error, out of memory…).
    pub failure: Option<String>,
    /// Wall time of the evaluation.
    pub seconds: f64,
    /// Which worker ran it (for logs only; never affects the result).
    pub worker: usize,
}

impl JobResult {
    /// A scored failure.
    pub fn failed(key: u64, reason: impl Into<String>) -> JobResult {
        JobResult {
            key,
            fitness: None,
            metrics: Map::new(),
            failure: Some(reason.into()),
            seconds: 0.0,
            worker: 0,
        }
    }

    /// A non-finite fitness is a failure, and a failure has no fitness.
    pub fn normalized(mut self) -> JobResult {
        match self.fitness {
            Some(f) if !f.is_finite() => {
                self.fitness = None;
                self.failure
                    .get_or_insert_with(|| format!("non-finite fitness {f}"));
            }
            Some(_) if self.failure.is_some() => self.fitness = None,
            None if self.failure.is_none() => {
                self.failure = Some("the evaluator gave no fitness".into());
            }
            _ => {}
        }
        self
    }
}

/// Evaluates one candidate over all its seeds. Implementations must be
/// deterministic in the job (see the module docs) and must not panic on
/// numerical trouble: NaN/Inf, compile errors and out-of-memory are
/// failures in the result.
pub trait Evaluate: Send + Sync {
    fn evaluate(&self, job: &Job) -> JobResult;

    /// Evaluate a group of jobs with the same seeds (one population of a
    /// lockstep search, see [`groups`]): one result per job, in order,
    /// each failing alone. By default one by one.
    fn evaluate_group(&self, jobs: &[Job]) -> Vec<JobResult> {
        jobs.iter().map(|j| self.evaluate(j)).collect()
    }
}

/// Cut a batch into groups that train together: jobs with the same
/// seeds, in batch order, into as few groups of at most `size` as there
/// can be, of sizes that differ by at most one (so that the groups keep
/// workers busy alike). `size` 1: one job a group (one by one). The
/// groups depend on the jobs and `size` only (a lockstep member's bits
/// depend on its companions, so never on the number of workers).
pub fn groups(jobs: Vec<Job>, size: usize) -> Vec<Vec<Job>> {
    let size = size.max(1);
    let mut by_seeds: Vec<(Vec<u64>, Vec<Job>)> = Vec::new();
    for j in jobs {
        match by_seeds.iter_mut().find(|(s, _)| *s == j.seeds) {
            Some((_, list)) => list.push(j),
            None => by_seeds.push((j.seeds.clone(), vec![j])),
        }
    }
    let mut out = Vec::new();
    for (_, list) in by_seeds {
        let n = list.len();
        let count = n.div_ceil(size);
        let mut it = list.into_iter();
        for g in 0..count {
            // Sizes differ by at most one: the first n % count get one more.
            let len = n / count + usize::from(g < n % count);
            out.push(it.by_ref().take(len).collect());
        }
    }
    out
}

/// Runs a batch of jobs and reports each result as it finishes.
pub trait Executor {
    /// How many jobs can run at once.
    fn workers(&self) -> usize;

    /// Evaluate `jobs`, calling `done` once per finished job, in any
    /// order. An error from `done` stops the batch (running jobs finish)
    /// and is returned. When the executor's stop flag is raised, jobs not
    /// yet started are left undone and `run` returns `Ok`.
    fn run(&mut self, jobs: Vec<Job>, done: &mut dyn FnMut(JobResult) -> Result<()>) -> Result<()> {
        let groups = jobs.into_iter().map(|j| vec![j]).collect();
        self.run_groups(groups, &mut |results: Vec<JobResult>| {
            results.into_iter().try_for_each(&mut *done)
        })
    }

    /// Evaluate `groups` as [`Executor::run`] does `jobs`, each group on
    /// one worker with [`Evaluate::evaluate_group`] (a lockstep
    /// population): `done` gets a group's results together (one per job,
    /// in any order) when the group ends.
    fn run_groups(
        &mut self,
        groups: Vec<Vec<Job>>,
        done: &mut dyn FnMut(Vec<JobResult>) -> Result<()>,
    ) -> Result<()>;
}

/// N worker threads in this process, one shared queue.
pub struct InProcess {
    /// One evaluator for all threads, or one per thread (per device).
    evaluators: Vec<Arc<dyn Evaluate>>,
    workers: usize,
    stop: Arc<AtomicBool>,
}

impl InProcess {
    /// `workers` threads (at least one); `stop` is the flag that Ctrl-C
    /// raises.
    pub fn new(evaluator: Arc<dyn Evaluate>, workers: usize, stop: Arc<AtomicBool>) -> InProcess {
        InProcess {
            evaluators: vec![evaluator],
            workers: workers.max(1),
            stop,
        }
    }

    /// One thread per evaluator (e.g. one per GPU, each with its own
    /// device); at least one evaluator.
    pub fn per_worker(evaluators: Vec<Arc<dyn Evaluate>>, stop: Arc<AtomicBool>) -> InProcess {
        assert!(!evaluators.is_empty(), "at least one evaluator");
        InProcess {
            workers: evaluators.len(),
            evaluators,
            stop,
        }
    }
}

impl Executor for InProcess {
    fn workers(&self) -> usize {
        self.workers
    }

    fn run_groups(
        &mut self,
        groups: Vec<Vec<Job>>,
        done: &mut dyn FnMut(Vec<JobResult>) -> Result<()>,
    ) -> Result<()> {
        let evaluators: Vec<&dyn Evaluate> = (0..self.workers)
            .map(|w| &*self.evaluators[w % self.evaluators.len()])
            .collect();
        run_pool(
            evaluators,
            groups,
            &self.stop,
            done,
            |evaluator, worker, group| evaluate_group_guarded(*evaluator, group, worker),
        )
    }
}

/// Runs `groups` of jobs from one queue on one thread per entry of
/// `workers` (fewer when there are fewer groups): thread `i` calls
/// `work(&mut workers[i], i, group)` for each group it takes, which gives
/// one result per job of the group. `done` sees every group's results in
/// this thread, in completion order; its first error stops the pool (groups
/// already running finish) and is returned. A raised `stop` leaves the
/// groups not yet started undone. The one worker loop of every executor
/// that keeps its workers in this process.
pub fn run_pool<W: Send>(
    mut workers: Vec<W>,
    groups: Vec<Vec<Job>>,
    stop: &AtomicBool,
    done: &mut dyn FnMut(Vec<JobResult>) -> Result<()>,
    work: impl Fn(&mut W, usize, &[Job]) -> Vec<JobResult> + Sync,
) -> Result<()> {
    workers.truncate(groups.len());
    let queue = Mutex::new(VecDeque::from(groups));
    let halt = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Vec<JobResult>>();
    let work = &work;
    std::thread::scope(|scope| {
        for (i, mut w) in workers.into_iter().enumerate() {
            let tx = tx.clone();
            let (queue, halt) = (&queue, &halt);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) || halt.load(Ordering::SeqCst) {
                    break;
                }
                let Some(job) = queue.lock().expect("job queue").pop_front() else {
                    break;
                };
                if tx.send(work(&mut w, i, &job)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut first_error = None;
        for result in rx {
            if first_error.is_some() {
                continue;
            }
            if let Err(e) = done(result) {
                halt.store(true, Ordering::SeqCst);
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

/// Evaluate `group` as one group: one result per job, in order, each
/// with its job's key and the worker's number. A group of one is
/// [`evaluate_guarded`]; a larger group that panics (or answers with
/// another number of results) is evaluated again job by job, each
/// guarded, so a panic costs no other member its result.
pub fn evaluate_group_guarded(
    evaluator: &dyn Evaluate,
    group: &[Job],
    worker: usize,
) -> Vec<JobResult> {
    if group.len() == 1 {
        return vec![evaluate_guarded(evaluator, &group[0], worker)];
    }
    match catch_unwind(AssertUnwindSafe(|| evaluator.evaluate_group(group))) {
        Ok(results) if results.len() == group.len() => results
            .into_iter()
            .zip(group)
            .map(|(mut r, job)| {
                r.key = job.key();
                r.worker = worker;
                r.normalized()
            })
            .collect(),
        _ => group
            .iter()
            .map(|job| evaluate_guarded(evaluator, job, worker))
            .collect(),
    }
}

/// Evaluate `job`; a panic is retried once, then scored as a failure.
/// The result carries the key of the job and the worker's number.
pub fn evaluate_guarded(evaluator: &dyn Evaluate, job: &Job, worker: usize) -> JobResult {
    let start = Instant::now();
    let mut last = String::new();
    for _attempt in 0..2 {
        match catch_unwind(AssertUnwindSafe(|| evaluator.evaluate(job))) {
            Ok(mut r) => {
                r.key = job.key();
                r.worker = worker;
                return r.normalized();
            }
            Err(payload) => last = panic_message(payload.as_ref()),
        }
    }
    let mut r = JobResult::failed(job.key(), format!("worker died twice: {last}"));
    r.seconds = start.elapsed().as_secs_f64();
    r.worker = worker;
    r
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Square {
        calls: AtomicUsize,
    }

    impl Evaluate for Square {
        fn evaluate(&self, job: &Job) -> JobResult {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if job.formula() == PANIC_ONCE && n.is_multiple_of(2) {
                panic!("boom");
            }
            if job.formula() == PANIC {
                panic!("always");
            }
            JobResult {
                fitness: Some((job.key() * job.key()) as f64),
                ..JobResult::failed(job.key(), "")
            }
            .with_no_failure()
        }
    }

    impl JobResult {
        fn with_no_failure(mut self) -> JobResult {
            self.failure = None;
            self
        }
    }

    /// Formulas that make [`Square`] panic once, and always.
    const PANIC_ONCE: &str = "sin(x)";
    const PANIC: &str = "cos(x)";

    fn job(key: u64, formula: &str) -> Job {
        Job {
            candidate: Candidate::parse(key, formula, crate::ir::Library::standard()).unwrap(),
            seeds: vec![0],
        }
    }

    #[test]
    fn every_job_is_reported_once_by_any_number_of_workers() {
        for workers in [1, 3, 8] {
            let eval = Arc::new(Square {
                calls: AtomicUsize::new(0),
            });
            let mut ex = InProcess::new(eval, workers, Arc::new(AtomicBool::new(false)));
            let mut got = Vec::new();
            ex.run((0..20).map(|k| job(k, "x")).collect(), &mut |r| {
                got.push((r.key, r.fitness));
                Ok(())
            })
            .unwrap();
            got.sort_by_key(|g| g.0);
            let want: Vec<_> = (0..20).map(|k| (k, Some((k * k) as f64))).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_panic_is_retried_once_then_scored() {
        let eval = Square {
            calls: AtomicUsize::new(0),
        };
        let r = evaluate_guarded(&eval, &job(3, PANIC_ONCE), 2);
        assert_eq!(r.fitness, Some(9.0));
        assert_eq!(r.worker, 2);
        let r = evaluate_guarded(&eval, &job(4, PANIC), 0);
        assert_eq!(r.fitness, None);
        assert!(r.failure.unwrap().contains("always"));
    }

    #[test]
    fn a_raised_stop_flag_starts_nothing() {
        let eval = Arc::new(Square {
            calls: AtomicUsize::new(0),
        });
        let mut ex = InProcess::new(eval.clone(), 2, Arc::new(AtomicBool::new(true)));
        let mut n = 0;
        ex.run((0..5).map(|k| job(k, "x")).collect(), &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 0);
        assert_eq!(eval.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_error_from_done_is_returned() {
        let eval = Arc::new(Square {
            calls: AtomicUsize::new(0),
        });
        let mut ex = InProcess::new(eval, 2, Arc::new(AtomicBool::new(false)));
        let e = ex.run((0..5).map(|k| job(k, "x")).collect(), &mut |_| {
            Err(crate::error::Error::Failed("disk full".into()))
        });
        assert!(e.unwrap_err().to_string().contains("disk full"));
    }

    #[test]
    fn groups_keep_batch_order_split_by_seeds_and_balance_sizes() {
        let seeded = |key: u64, seeds: Vec<u64>| Job {
            seeds,
            ..job(key, "x")
        };
        let keys = |gs: &[Vec<Job>]| -> Vec<Vec<u64>> {
            gs.iter()
                .map(|g| g.iter().map(Job::key).collect())
                .collect()
        };
        let jobs: Vec<Job> = (0..7).map(|k| seeded(k, vec![0])).collect();
        assert_eq!(
            keys(&groups(jobs.clone(), 1)),
            (0..7).map(|k| vec![k]).collect::<Vec<_>>()
        );
        assert_eq!(
            keys(&groups(jobs.clone(), 4)),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6]]
        );
        assert_eq!(
            keys(&groups(jobs.clone(), 3)),
            vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]
        );
        assert_eq!(keys(&groups(jobs, 64)), vec![(0..7).collect::<Vec<_>>()]);
        let mixed = vec![
            seeded(1, vec![0]),
            seeded(2, vec![1]),
            seeded(3, vec![0]),
            seeded(4, vec![1]),
        ];
        assert_eq!(keys(&groups(mixed, 8)), vec![vec![1, 3], vec![2, 4]]);
    }

    #[test]
    fn non_finite_fitness_is_a_failure() {
        let r = JobResult {
            fitness: Some(f64::NAN),
            failure: None,
            ..JobResult::failed(1, "")
        }
        .normalized();
        assert_eq!(r.fitness, None);
        assert!(r.failure.unwrap().contains("non-finite"));
    }
}
