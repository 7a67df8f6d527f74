//! A fast stand-in for training, for tests and for developing the engine
//! (`actforge search --evaluator synthetic`): it scores a formula by how
//! close it is to GELU and how small it is, so that determinism, resume
//! and kill -9 tests run in seconds.
//!
//! Fitness of one seed = 1 / (1 + 10 · MSE) − 0.0005 · nodes + 0.001 · u, where
//! MSE is the mean squared difference from exact GELU over 161 points of
//! [-4, 4] (f32 tape evaluator), nodes the DAG nodes of the simplified
//! formula, and u ∈ [-1, 1) a deterministic function of (canonical key,
//! seed) that plays the part of seed-to-seed noise. The job's fitness is
//! the mean over its seeds. A non-finite output is a failure. An optional
//! sleep of `sleep_ms × (1 + key mod 3)` per job scrambles the completion
//! order of parallel workers, as real training times do.
//!
//! A group of jobs (a lockstep population, [`Evaluate::evaluate_group`])
//! is emulated, so that tests can check the grouping without training:
//! one sleep for the group (that of its first job), and each member's
//! fitness is its one-by-one fitness plus `1e-9 · v`, `v ∈ [-1, 1)` a
//! deterministic function of the keys of the whole group and the seeds,
//! as a real population's members differ from their one-by-one runs in
//! the last bits, depending on their companions; its metrics gain
//! `"population"` (the group's size).
//!
//! The final retrain ([`Retrain`]) uses a finer grid (801 points), its
//! "test split", and the given seeds; nothing trains, so it has no steps.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map};

use crate::diff::Function;
use crate::error::Result;
use crate::ir::Tape;

use super::exec::executor::{Evaluate, Job, JobResult};
use super::retrain::{Entrant, Plan, Retrain, RetrainResult, Retrained};

/// Points of the grid in a search evaluation.
pub const SEARCH_POINTS: usize = 161;
/// Points of the grid in the final retrain.
pub const RETRAIN_POINTS: usize = 801;
/// Fitness lost per DAG node.
pub const SIZE_PENALTY: f64 = 0.0005;
/// Weight of the mean squared error.
pub const MSE_WEIGHT: f64 = 10.0;
/// Amplitude of the per-seed noise.
pub const NOISE: f64 = 0.001;

/// The synthetic evaluator.
pub struct Synthetic {
    sleep_ms: u64,
}

impl Synthetic {
    pub fn new(sleep_ms: u64) -> Synthetic {
        Synthetic { sleep_ms }
    }

    /// Per-seed fitnesses of a candidate's function on a grid of `points`,
    /// or why it failed. Also returns the MSE and node count. `key` draws
    /// the per-seed noise.
    fn score(f: &Function, key: u64, seeds: &[u64], points: usize) -> Scored {
        let mse = mse_to_gelu(f, points);
        if !mse.is_finite() {
            return Scored::failed("non-finite output on [-4, 4]".into());
        }
        let nodes = f.nodes_after;
        let base = 1.0 / (1.0 + MSE_WEIGHT * mse) - SIZE_PENALTY * nodes as f64;
        let runs = seeds
            .iter()
            .map(|&s| base + NOISE * noise(key, s))
            .collect();
        Scored {
            runs,
            mse,
            nodes,
            failure: None,
        }
    }
}

struct Scored {
    runs: Vec<f64>,
    mse: f64,
    nodes: usize,
    failure: Option<String>,
}

impl Scored {
    fn failed(why: String) -> Scored {
        Scored {
            runs: Vec::new(),
            mse: f64::NAN,
            nodes: 0,
            failure: Some(why),
        }
    }
}

/// Exact GELU, `0.5 x (1 + erf(x / √2))`.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

/// Mean squared difference from GELU on `points` points of [-4, 4].
fn mse_to_gelu(f: &Function, points: usize) -> f64 {
    let xs: Vec<f32> = (0..points)
        .map(|i| (-4.0 + 8.0 * i as f64 / (points - 1) as f64) as f32)
        .collect();
    let mut ys = vec![0.0f32; points];
    Tape::new(&f.graph, &[f.f]).map(&xs, &mut ys);
    let sum: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| (y as f64 - gelu(x as f64)).powi(2))
        .sum();
    sum / points as f64
}

/// A deterministic value in [-1, 1) from (key, seed).
fn noise(key: u64, seed: u64) -> f64 {
    (noise_bits(key, seed) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// 64 well-mixed bits of (key, seed) (splitmix64's finalizer).
fn noise_bits(key: u64, seed: u64) -> u64 {
    let mut z = key ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How far an emulated population member is from its one-by-one fitness
/// at most (see the module docs).
pub const GROUP_NOISE: f64 = 1e-9;

impl Evaluate for Synthetic {
    fn evaluate_group(&self, jobs: &[Job]) -> Vec<JobResult> {
        let start = Instant::now();
        if let (Some(first), true) = (jobs.first(), self.sleep_ms > 0) {
            std::thread::sleep(Duration::from_millis(self.sleep_ms * (1 + first.key() % 3)));
        }
        let companions = jobs
            .iter()
            .fold(0u64, |h, j| noise_bits(h ^ j.key(), jobs.len() as u64));
        let quiet = Synthetic::new(0);
        jobs.iter()
            .map(|job| {
                let mut r = quiet.evaluate(job);
                if let Some(f) = &mut r.fitness {
                    let seed = job.seeds.iter().fold(0, |h, &s| noise_bits(h, s));
                    *f += GROUP_NOISE * noise(companions ^ job.key(), seed);
                }
                r.metrics.insert("population".into(), json!(jobs.len()));
                r.seconds = start.elapsed().as_secs_f64();
                r
            })
            .collect()
    }

    fn evaluate(&self, job: &Job) -> JobResult {
        let start = Instant::now();
        if self.sleep_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.sleep_ms * (1 + job.key() % 3)));
        }
        let c = &job.candidate;
        let s = Synthetic::score(&c.function, c.key, &job.seeds, SEARCH_POINTS);
        let mut metrics = Map::new();
        if s.failure.is_none() {
            metrics.insert("mse_to_gelu".into(), json!(s.mse));
            metrics.insert("nodes".into(), json!(s.nodes));
            metrics.insert("per_seed".into(), json!(s.runs));
        }
        let fitness =
            (!s.runs.is_empty()).then(|| s.runs.iter().sum::<f64>() / s.runs.len() as f64);
        JobResult {
            key: job.key(),
            fitness: if s.failure.is_some() { None } else { fitness },
            metrics,
            failure: s.failure,
            seconds: start.elapsed().as_secs_f64(),
            worker: 0,
        }
    }
}

impl Retrain for Synthetic {
    fn retrain(&self, entrants: &[Entrant], plan: &Plan, _dir: &Path) -> Result<Retrained> {
        let seeds = &plan.seeds[..];
        let results = entrants
            .iter()
            .map(|e| {
                let c = &e.candidate;
                let key = crate::gp::syntactic_hash(&c.text);
                let s = Synthetic::score(&c.function, key, seeds, RETRAIN_POINTS);
                let mut metrics = Map::new();
                metrics.insert("mse_to_gelu".into(), json!(s.mse));
                if let Some(f) = &s.failure {
                    metrics.insert("failure".into(), json!(f));
                }
                RetrainResult {
                    label: e.label.clone(),
                    formula: e.candidate.text.clone(),
                    runs: if s.failure.is_some() {
                        vec![None; seeds.len()]
                    } else {
                        s.runs.into_iter().map(Some).collect()
                    },
                    metrics,
                }
            })
            .collect();
        Ok(Retrained {
            results,
            split: "test".into(),
            steps: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::candidate::Candidate;

    fn eval(formula: &str) -> JobResult {
        let s = Synthetic::new(0);
        s.evaluate(&Job {
            candidate: Candidate::parse(7, formula, crate::ir::Library::standard()).unwrap(),
            seeds: vec![0, 1],
        })
    }

    #[test]
    fn gelu_scores_best_and_bad_formulas_fail() {
        let g = eval("gelu(x)").fitness.unwrap();
        let relu = eval("relu(x)").fitness.unwrap();
        let lin = eval("x").fitness.unwrap();
        assert!(g > relu && relu > lin, "{g} {relu} {lin}");
        let bad = eval("log(x - 10)");
        assert_eq!(bad.fitness, None);
        assert!(bad.failure.unwrap().contains("non-finite"));
        let (a, b) = (eval("gelu(x)"), eval("gelu(x)"));
        assert_eq!(
            (a.fitness, a.metrics),
            (b.fitness, b.metrics),
            "deterministic"
        );
    }

    #[test]
    fn noise_is_bounded() {
        for k in 0..1000 {
            let u = noise(k, k * 3 + 1);
            assert!((-1.0..1.0).contains(&u));
        }
    }
}
