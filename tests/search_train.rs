//! The GP search with the real fitness evaluator (the `train` recipe on a
//! micro model for a few steps): the evaluations carry the training
//! metrics, the final comparison trains the hall of fame against GELU,
//! a candidate's fitness in the search equals a direct training run bit
//! for bit, the hall of fame does not depend on the worker count, and bad
//! training settings fail before a run directory exists.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use actforge::fitness::{run, Prepared, RunOptions};
use actforge::op::Activation;
use actforge::search::candidate::Candidate;
use actforge::search::config::{Settings, TrainSettings};
use actforge::search::progress::{JobObserver, TrainingObserver};
use actforge::search::training::{recipe, Training};
use actforge::search::{Evaluate, Job};
use candle_core::Device;
use common::harness::{bin, json, lines, tmp, without_times, MICRO};
use serde_json::Value;

fn search(dir: &Path, extra: &[&str]) -> Output {
    let out = bin()
        .args(MICRO)
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "search failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn evaluations(dir: &Path) -> Vec<Value> {
    lines(&dir.join("evaluations.jsonl"))
}

#[test]
fn a_trained_search_scores_candidates_and_retrains_the_best_against_gelu() {
    let dir = tmp("end-to-end");
    let out = search(
        &dir,
        &[
            "--workers",
            "2",
            "--retrain-top",
            "1",
            "--retrain-seeds",
            "2",
            "--final-steps",
            "6",
            "--json",
        ],
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "finished");

    let trained: Vec<Value> = evaluations(&dir)
        .into_iter()
        .filter(|e| e["screened"].is_null() && e["fitness"].is_number())
        .collect();
    assert!(!trained.is_empty(), "something trained");
    for e in &trained {
        let m = &e["metrics"];
        for key in ["ppl", "acc", "valid_loss", "fitness"] {
            assert!(m[key].as_f64().unwrap().is_finite(), "{key} in {e}");
        }
        assert_eq!(m["fitness"], e["fitness"]);
        let runs = m["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "one training seed");
        assert_eq!(runs[0]["steps"], 4);
        assert_eq!(runs[0]["status"], "ok");
    }
    // The search races seeds (the default): the best is the hall of
    // fame's first entry, the highest mean paired difference from GELU,
    // and its fitness is the mean of its logged per-seed fitnesses.
    let hof = json(&dir.join("hall_of_fame.json"));
    let hof = hof.as_array().unwrap();
    assert_eq!(summary["best"]["hash"], hof[0]["hash"]);
    let value = |e: &Value| e["objectives"][0].as_f64().unwrap();
    assert!(hof.iter().all(|e| value(e) <= value(&hof[0])), "{hof:?}");
    let mut by_seed: Vec<(u64, f64)> = trained
        .iter()
        .filter(|e| e["hash"] == hof[0]["hash"])
        .map(|e| {
            let seed = e["seeds"][0].as_u64().unwrap();
            (seed, e["fitness"].as_f64().unwrap())
        })
        .collect();
    by_seed.sort_by_key(|&(seed, _)| seed);
    let per_seed: Vec<f64> = by_seed.iter().map(|&(_, f)| f).collect();
    assert_eq!(per_seed.len(), hof[0]["seeds"].as_array().unwrap().len());
    let mean = per_seed.iter().sum::<f64>() / per_seed.len() as f64;
    assert_eq!(summary["best"]["fitness"].as_f64().unwrap(), mean);

    // The final comparison: GELU (the framework's) and the best, two seeds
    // each, on all the training data, with `train`'s own result files.
    let fin = json(&dir.join("final.json"));
    let rows = fin["summary"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["activation"], "gelu");
    // Named by what trains, not by the prelude's exact GELU.
    assert_eq!(rows[0]["formula"], "gelu (candle, tanh)");
    assert_eq!(rows[1]["activation"], "hof-1");
    for r in rows {
        assert_eq!(r["runs_ok"], 2, "{r}");
        assert!(r["fitness"]["mean"].as_f64().unwrap().is_finite());
    }
    // The paired contract for every metric of the trained comparison.
    assert!(rows[0]["vs_baseline"].is_null());
    for key in ["bleu", "chrf", "ppl", "acc", "fitness"] {
        let d = &rows[1]["vs_baseline"][key];
        for k in ["mean_diff", "ci95", "p", "p_holm", "n", "better"] {
            assert!(d.get(k).is_some(), "vs_baseline.{key}.{k} in {d}");
        }
        assert_eq!(d["n"], 2, "{key}");
    }
    let results = json(&dir.join("final").join("results.json"));
    assert_eq!(results["experiment"]["activations"][0], "gelu");
    assert!(
        results["data"]["thinning"].is_null(),
        "the retrain uses all the data"
    );
    // The held-out verdict: the test split, --final-steps, and seeds the
    // search never trained with (the two after every seed a raced
    // candidate can earn: 3, 4, 5 and 6 with --max-seeds 4).
    assert_eq!(fin["split"], "test");
    assert_eq!(results["data"]["split"], "test");
    assert_eq!(fin["steps"], 6);
    assert_eq!(fin["seeds"], serde_json::json!([7, 8]));
    assert_eq!(summary["final"]["split"], "test");
    let searched: Vec<u64> = evaluations(&dir)
        .iter()
        .flat_map(|e| {
            let listed = e["seeds"].as_array().cloned().unwrap_or_default();
            let runs = e["metrics"]["runs"].as_array().cloned().unwrap_or_default();
            listed
                .into_iter()
                .chain(runs.into_iter().map(|r| r["seed"].clone()))
                .filter_map(|v| v.as_u64())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(searched.contains(&3), "the lines record their seeds");
    for s in fin["seeds"].as_array().unwrap() {
        assert!(!searched.contains(&s.as_u64().unwrap()), "{s} was searched");
    }
    for r in fin["runs"].as_array().unwrap() {
        assert!(fin["seeds"].as_array().unwrap().contains(&r["seed"]));
    }
    assert!(fin["mde"].as_f64().unwrap() > 0.0, "{}", fin["mde"]);
    let text = String::from_utf8(
        search(
            &tmp("end-to-end-text"),
            &[
                "--workers",
                "1",
                "--retrain-top",
                "1",
                "--retrain-seeds",
                "2",
                "--final-steps",
                "2",
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(text.contains("measured on the test split"), "{text}");
    assert!(text.contains("verdict hof-1: "), "{text}");
    assert!(text.contains("gelu (candle, tanh) (Holm p "), "{text}");
    assert!(dir.join("final").join("learning_curves.png").exists());
    assert!(!dir.join("final").join("checkpoints").exists());
}

/// The search's candidates cannot read the test split: their data holds
/// none of it, and no pair they are scored on is a test pair; the final
/// verdict's data scores the test split on the whole training split.
#[test]
fn the_search_holds_no_test_pair_and_the_verdict_scores_only_test_pairs() {
    let mut settings = Settings::default();
    settings.train.preset = Some("gpt-micro".into());
    settings.train.steps = Some(4);
    settings.train.thin = 0.2;
    let lib = std::sync::Arc::new(actforge::ir::Library::standard().clone());
    let t = actforge::search::training::Training::new(&settings.train, lib, None).unwrap();
    let full = Prepared::new(&recipe(&settings.train).unwrap()).unwrap();
    assert!(!full.splits.test.is_empty());
    let searched = t.prepared();
    assert!(
        searched.splits.test.is_empty(),
        "the test split is withheld"
    );
    let test: std::collections::HashSet<_> = full.splits.test.iter().collect();
    assert!(searched.valid_pairs.iter().all(|p| !test.contains(p)));
    assert_eq!(searched.valid_pairs, full.valid_pairs);
    let fin = t.final_data(Some(7)).unwrap();
    assert_eq!(fin.holdout, actforge::fitness::Holdout::Test);
    assert!(!fin.valid_pairs.is_empty());
    assert!(fin.valid_pairs.iter().all(|p| test.contains(p)));
    assert!(fin.thinning.is_none(), "the whole training split");
    assert_eq!(fin.train.len(), full.splits.train.len());
    assert_eq!(actforge::fitness::run::total_steps(&fin), 7);
}

#[test]
fn fitness_in_the_search_equals_a_direct_training_run_bit_for_bit() {
    let dir = tmp("direct");
    search(&dir, &["--workers", "1", "--retrain-top", "0"]);
    let config = json(&dir.join("config.json"));
    let settings = Settings::from_json(&config["settings"], "config.json").unwrap();
    let prep = Prepared::new(&recipe(&settings.train).unwrap()).unwrap();
    let e = evaluations(&dir)
        .into_iter()
        .find(|e| e["fitness"].is_number())
        .expect("one candidate trained");
    let act = Activation::parse(&format!("fused:{}", e["formula"].as_str().unwrap())).unwrap();
    let o = run(&prep, &act, 3, &Device::Cpu, &RunOptions::default()).unwrap();
    assert_eq!(
        o.fitness().unwrap().to_bits(),
        e["fitness"].as_f64().unwrap().to_bits(),
        "{}",
        e["formula"]
    );
}

#[test]
fn fitness_weights_reach_the_search_and_its_config() {
    let dir = tmp("weights");
    search(
        &dir,
        &["--workers", "1", "--retrain-top", "0", "--weights", "ppl=1"],
    );
    let config = json(&dir.join("config.json"));
    assert_eq!(config["settings"]["train"]["weights"], "bleu=0,ppl=1,acc=0");
    let settings = Settings::from_json(&config["settings"], "config.json").unwrap();
    let prep = Prepared::new(&recipe(&settings.train).unwrap()).unwrap();
    // With the perplexity term alone, the fitness is that term.
    let e = evaluations(&dir)
        .into_iter()
        .find(|e| e["fitness"].is_number())
        .expect("one candidate trained");
    let ppl = e["metrics"]["ppl"].as_f64().unwrap();
    let want = actforge::metrics::ppl_score(ppl, prep.vocab());
    let got = e["fitness"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn the_hall_of_fame_does_not_depend_on_the_worker_count() {
    let one = tmp("workers-1");
    let three = tmp("workers-3");
    search(&one, &["--workers", "1", "--retrain-top", "0"]);
    search(&three, &["--workers", "3", "--retrain-top", "0"]);
    // Everything but the wall times.
    assert_eq!(
        without_times(json(&one.join("hall_of_fame.json"))),
        without_times(json(&three.join("hall_of_fame.json")))
    );
    let fitness = |d: &Path| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = evaluations(d)
            .into_iter()
            .map(|e| {
                (
                    e["hash"].as_str().unwrap().to_string(),
                    e["fitness"].clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(fitness(&one), fitness(&three));
}

#[test]
fn bad_training_settings_fail_before_the_run_directory_exists() {
    for (flags, needle) in [
        (&["--preset", "gpt-huge"][..], "gpt-huge"),
        (&["--batch-size", "0"][..], "--batch-size"),
        (&["--weights", "chrf=1"][..], "unknown key `chrf`"),
    ] {
        let dir = tmp("bad");
        let out = bin()
            .args(["search", "--quiet", "--out"])
            .arg(&dir)
            .args(flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
        assert!(!dir.exists(), "{flags:?}");
    }
}

/// Writes down what the training evaluator reports.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }
}

impl TrainingObserver for Recorder {
    fn job_started(&self, formula: &str, steps: u64) -> Box<dyn JobObserver> {
        self.push(format!("job {formula} {steps}"));
        Box::new(JobRecorder(self.clone()))
    }
    fn line(&self, text: &str) {
        self.push(format!("line {text}"));
    }
}

/// One job's handle: it says "end" when the job lets it go.
struct JobRecorder(Recorder);

impl JobObserver for JobRecorder {
    fn seed_started(&self, seed: u64) {
        self.0.push(format!("seed {seed}"));
    }
    fn step(&self, step: u64) {
        self.0.push(format!("step {step}"));
    }
}

impl Drop for JobRecorder {
    fn drop(&mut self) {
        self.0.push("end".into());
    }
}

#[test]
fn the_training_evaluator_reports_each_jobs_steps_to_its_observer() {
    let t = TrainSettings {
        task: actforge::fitness::Task::Qa,
        steps: Some(3),
        thin: 0.2,
        device: actforge::device::Device::Cpu,
        preset: Some("gpt-micro".into()),
        batch_size: Some(8),
        weights: None,
    };
    let library = Settings::default()
        .primitive_set(None)
        .unwrap()
        .library_arc();
    let seen = Recorder::default();
    let observer: Arc<dyn TrainingObserver> = Arc::new(seen.clone());
    let training = Training::new(&t, library.clone(), Some(observer)).unwrap();
    let job = Job {
        candidate: Candidate::parse(7, "gelu(ARG0)", &library).unwrap(),
        seeds: vec![1, 2],
    };
    let r = training.evaluate(&job);
    assert!(r.fitness.is_some(), "{r:?}");
    let events = seen.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "job gelu(ARG0) 3",
            "seed 1",
            "step 1",
            "step 2",
            "step 3",
            "seed 2",
            "step 1",
            "step 2",
            "step 3",
            "end"
        ]
    );
}

/// Lockstep members are held to their one-by-one values within this
/// (relative; `fitness::lockstep`'s guarantee, `tests/lockstep.rs`).
const LOCKSTEP_REL: f64 = 1e-4;

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= LOCKSTEP_REL * a.abs().max(b.abs()).max(1e-6)
}

#[test]
fn a_lockstep_group_gives_each_member_its_one_by_one_result_and_a_diverging_one_fails_alone() {
    let t = TrainSettings {
        task: actforge::fitness::Task::Qa,
        steps: Some(4),
        thin: 0.2,
        device: actforge::device::Device::Cpu,
        preset: Some("gpt-micro".into()),
        batch_size: Some(8),
        weights: None,
    };
    let library = Settings::default()
        .primitive_set(None)
        .unwrap()
        .library_arc();
    let training = Training::new(&t, library.clone(), None).unwrap();
    // The middle one overflows at its first step.
    let texts = ["gelu(ARG0)", "exp(ARG0 * 1000)", "sin(ARG0)"];
    let jobs: Vec<Job> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Job {
            candidate: Candidate::parse(i as u64 + 1, t, &library).unwrap(),
            seeds: vec![1, 2],
        })
        .collect();
    let group = training.evaluate_group(&jobs);
    assert_eq!(group.len(), 3);
    for (job, g) in jobs.iter().zip(&group) {
        let one = training.evaluate(job);
        assert_eq!(g.key, job.key());
        assert_eq!(g.metrics["population"], 3, "{g:?}");
        match (g.fitness, one.fitness) {
            (Some(a), Some(b)) => {
                assert!(
                    near(a, b),
                    "{}: lockstep {a} vs one by one {b}",
                    job.formula()
                );
                for k in ["ppl", "acc", "bleu", "valid_loss"] {
                    let (x, y) = (
                        g.metrics[k].as_f64().unwrap(),
                        one.metrics[k].as_f64().unwrap(),
                    );
                    assert!(near(x, y), "{}: {k} {x} vs {y}", job.formula());
                }
                assert_eq!(g.metrics["runs"].as_array().unwrap().len(), 2);
            }
            (None, None) => {
                // Failed alone, at its first seed and step, as one by one.
                assert_eq!(job.formula(), texts[1]);
                let why = g.failure.as_deref().unwrap();
                assert!(
                    why.contains("non-finite") && why.contains("seed 1, step 0"),
                    "{why}"
                );
                assert_eq!(g.failure, one.failure);
            }
            (a, b) => panic!("{}: lockstep {a:?} vs one by one {b:?}", job.formula()),
        }
    }
    assert!(group[0].fitness.is_some() && group[2].fitness.is_some());
    assert!(group[1].fitness.is_none());
}

/// `search --lockstep` (racing on) against the one-by-one search of the
/// same seed: the same candidate-seeds trained, each fitness within the
/// lockstep tolerance, the same hall of fame; and the same lines bit for
/// bit from worker processes as from one thread.
#[test]
fn search_lockstep_gives_the_one_by_one_hall_of_fame() {
    let (solo, lock, procs) = (tmp("ls-solo"), tmp("ls-lock"), tmp("ls-procs"));
    let raced = ["--max-seeds", "2", "--retrain-top", "0"];
    search(&solo, &[&raced[..], &["--workers", "2"]].concat());
    search(
        &lock,
        &[&raced[..], &["--lockstep", "--workers", "1"]].concat(),
    );
    search(
        &procs,
        &[
            &raced[..],
            &["--lockstep", "--workers", "2", "--executor", "process"],
        ]
        .concat(),
    );
    let by_seed = |d: &Path| -> std::collections::BTreeMap<(String, String), Value> {
        let mut m = std::collections::BTreeMap::new();
        for mut e in evaluations(d) {
            let o = e.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("worker");
            for r in o["metrics"]["runs"].as_array_mut().into_iter().flatten() {
                let r = r.as_object_mut().unwrap();
                r.remove("train_seconds");
                r.remove("eval_seconds");
            }
            let k = (o["hash"].to_string(), o["seeds"].to_string());
            assert!(m.insert(k.clone(), e).is_none(), "{k:?} evaluated twice");
        }
        m
    };
    let (one, many, via_procs) = (by_seed(&solo), by_seed(&lock), by_seed(&procs));
    assert_eq!(many, via_procs);
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        many.keys().collect::<Vec<_>>()
    );
    let mut populations = 0;
    for (k, e) in &many {
        populations += usize::from(e["metrics"]["population"].as_u64().unwrap_or(1) > 1);
        match (e["fitness"].as_f64(), one[k]["fitness"].as_f64()) {
            (Some(a), Some(b)) => assert!(near(a, b), "{k:?}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{k:?}"),
        }
    }
    assert!(
        populations >= 2,
        "some candidate-seeds trained as populations"
    );
    let hof = |d: &Path| -> Vec<(Value, Value)> {
        json(&d.join("hall_of_fame.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["formula"].clone(), e["seeds"].clone()))
            .collect()
    };
    assert_eq!(hof(&solo), hof(&lock));
}
