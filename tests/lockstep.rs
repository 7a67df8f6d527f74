//! Lockstep training (`fitness::lockstep`): K activations from one seed as
//! one population model give each member its one-by-one run (losses,
//! failure step, metrics) within 1e-4 relative; a member whose loss goes
//! non-finite is frozen and scored as failed at its step while the others
//! go on; an interrupted population resumes to the uninterrupted result.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actforge::diff::Function;
use actforge::fitness::{self, Length, Outcome, Prepared, Recipe, RunOptions, Status, Task};
use actforge::op::Activation;
use candle_core::Device;

/// The tolerance a lockstep member is held to against its one-by-one run
/// (relative, on every loss and metric).
const REL: f64 = 1e-4;

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-lockstep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A quick Q&A recipe on the built-in data (gpt-micro on the CPU).
fn qa_recipe(steps: u64) -> Recipe {
    let mut r = Recipe::for_task(Task::Qa, false);
    r.length = Length::Steps(steps);
    r.batch_size = 8;
    r.eval_examples = 32;
    r.eval_sentences = 8;
    r.eval_max_new = 8;
    r
}

fn specs() -> Vec<String> {
    vec![
        format!("fused:{QA}"),
        "gelu".into(),
        // Fails at its first step: exp overflows.
        "fused:exp(x * 1000)".into(),
        "fused:x * sigmoid(x)".into(),
    ]
}

fn near(a: f64, b: f64, what: &str) {
    let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= REL * a.abs().max(b.abs()).max(1e-6);
    assert!(ok, "{what}: lockstep {a} vs one-by-one {b}");
}

fn same_run(lock: &Outcome, single: &Outcome) {
    let who = &single.activation;
    assert_eq!(lock.activation, single.activation);
    assert_eq!(lock.seed, single.seed);
    match (&lock.status, &single.status) {
        (Status::Ok, Status::Ok) => {}
        (Status::Failed { step: a, .. }, Status::Failed { step: b, .. }) => {
            assert_eq!(a, b, "{who}: failure step")
        }
        (a, b) => panic!("{who}: lockstep {a:?} vs one-by-one {b:?}"),
    }
    assert_eq!(lock.steps, single.steps, "{who}: steps");
    assert_eq!(lock.losses.len(), single.losses.len(), "{who}");
    for (i, (a, b)) in lock.losses.iter().zip(&single.losses).enumerate() {
        near(*a as f64, *b as f64, &format!("{who}: loss of step {i}"));
    }
    match (&lock.eval, &single.eval) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            for (k, x, y) in [
                ("valid_loss", a.valid_loss, b.valid_loss),
                ("ppl", a.ppl, b.ppl),
                ("acc", a.acc, b.acc),
                ("bleu", a.bleu.score, b.bleu.score),
                ("chrf", a.chrf, b.chrf),
                ("fitness", a.fitness, b.fitness),
            ] {
                near(x, y, &format!("{who}: {k}"));
            }
            assert_eq!(a.sentences, b.sentences, "{who}");
        }
        (a, b) => panic!("{who}: evaluation {} vs {}", a.is_some(), b.is_some()),
    }
}

#[test]
fn every_member_equals_its_one_by_one_run_and_a_failed_one_is_frozen_at_its_step() {
    let prep = Prepared::new(&qa_recipe(6)).unwrap();
    let dev = Device::Cpu;
    let acts: Vec<Activation> = specs()
        .iter()
        .map(|s| Activation::parse(s).unwrap())
        .collect();
    let seed = 4;
    let lock = fitness::lockstep(&prep, &acts, seed, &dev, &RunOptions::default()).unwrap();
    assert_eq!(lock.len(), acts.len());
    for (a, o) in acts.iter().zip(&lock) {
        let single = fitness::run(&prep, a, seed, &dev, &RunOptions::default()).unwrap();
        same_run(o, &single);
    }
    // The exp member failed at its first step and the others trained on.
    assert!(matches!(lock[2].status, Status::Failed { step: 0, .. }));
    assert!(lock[2].fitness().is_none());
    for o in [&lock[0], &lock[1], &lock[3]] {
        assert_eq!(o.status, Status::Ok, "{}", o.activation);
        assert_eq!(o.losses.len(), 6);
        assert!(o.fitness().is_some());
    }
    // The members differ from each other (the test is not one model K times).
    assert_ne!(lock[0].losses, lock[3].losses);
}

#[test]
fn a_group_of_functions_is_what_a_search_evaluator_passes() {
    let prep = Prepared::new(&qa_recipe(3)).unwrap();
    let dev = Device::Cpu;
    let texts = ["x * sigmoid(x)", "tanh(x) + x * 0.5"];
    let group: Vec<(String, Arc<Function>)> = texts
        .iter()
        .map(|t| {
            let f = Function::new(&actforge::ir::parse(t).unwrap());
            (t.to_string(), Arc::new(f))
        })
        .collect();
    let out = fitness::lockstep_functions(&prep, &group, 9, &dev, &RunOptions::default()).unwrap();
    assert_eq!(out.len(), 2);
    for (t, o) in texts.iter().zip(&out) {
        let act = Activation::parse(&format!("fused:{t}")).unwrap();
        let single = fitness::run(&prep, &act, 9, &dev, &RunOptions::default()).unwrap();
        same_run(o, &single);
    }
}

#[test]
fn an_interrupted_population_resumes_to_the_uninterrupted_result() {
    let prep = Prepared::new(&qa_recipe(8)).unwrap();
    let dev = Device::Cpu;
    let acts: Vec<Activation> = specs()
        .iter()
        .map(|s| Activation::parse(s).unwrap())
        .collect();
    let full = fitness::lockstep(&prep, &acts, 2, &dev, &RunOptions::default()).unwrap();
    let dir = temp("interrupt");
    let stop = AtomicBool::new(false);
    let stop_after = |i: &fitness::StepInfo| {
        if i.step == 5 {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let plan = fitness::CheckpointPlan {
        dir: dir.clone(),
        every: 3,
    };
    let first = fitness::lockstep(
        &prep,
        &acts,
        2,
        &dev,
        &RunOptions {
            checkpoint: Some(plan.clone()),
            on_step: Some(&stop_after),
            stop: Some(&stop),
            samples: 0,
        },
    )
    .unwrap();
    assert_eq!(first[0].status, Status::Interrupted { step: 5 });
    assert!(
        matches!(first[2].status, Status::Failed { step: 0, .. }),
        "a failed member stays failed: {:?}",
        first[2].status
    );
    let resumed = fitness::lockstep(
        &prep,
        &acts,
        2,
        &dev,
        &RunOptions {
            checkpoint: Some(plan),
            ..Default::default()
        },
    )
    .unwrap();
    for (r, f) in resumed.iter().zip(&full) {
        assert_eq!(r.status, f.status, "{}", f.activation);
        assert_eq!(r.losses, f.losses, "{}: bit for bit", f.activation);
        assert_eq!(
            r.eval.as_ref().map(|e| e.metrics_json()),
            f.eval.as_ref().map(|e| e.metrics_json()),
            "{}",
            f.activation
        );
    }
    // Another population refuses this checkpoint, and so does a single run.
    let e = fitness::lockstep(
        &prep,
        &acts[..2],
        2,
        &dev,
        &RunOptions {
            checkpoint: Some(fitness::CheckpointPlan {
                dir: dir.clone(),
                every: 3,
            }),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("another run"), "{e}");
    let e = fitness::run(
        &prep,
        &acts[0],
        2,
        &dev,
        &RunOptions {
            checkpoint: Some(fitness::CheckpointPlan { dir, every: 3 }),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("another run"), "{e}");
}

/// `bench-step --population 2 --json`: the population's keys, and the op
/// counts (from candle's op calls, the same way for both): a lockstep
/// step of 2 members takes fewer ops than 2 single-model steps.
#[test]
fn bench_step_times_a_population_and_counts_its_ops() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_actforge"))
        .args([
            "bench-step",
            "--task",
            "qa",
            "--variant",
            "fused",
            "--population",
            "2",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "4",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let single = v["ops_per_step"].as_u64().unwrap();
    assert_eq!(v["ops_per_step_by_variant"]["fused"].as_u64(), Some(single));
    let p = &v["population"];
    assert_eq!(p["size"].as_u64(), Some(2));
    let step = p["step_ms"].as_f64().unwrap();
    assert!(step > 0.0);
    assert_eq!(p["step_ms_per_candidate"].as_f64(), Some(step / 2.0));
    let ops = p["ops_per_step"].as_u64().unwrap();
    assert_eq!(p["ops_per_candidate_step"].as_f64(), Some(ops as f64 / 2.0));
    // A forward, backward and update are hundreds of ops; the population
    // runs each op once for both members.
    assert!(single > 100, "{single}");
    assert!(ops >= single && ops < 2 * single, "{ops} vs {single}");
    assert_eq!(p["formulas"].as_array().unwrap().len(), 2);
    assert_ne!(p["formulas"][0], p["formulas"][1]);
}

/// A small translation corpus (TSV), as tests/train.rs makes it.
fn small_tsv(dir: &std::path::Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let words = [
        "red", "green", "blue", "house", "tree", "small", "big", "old", "new", "dog",
    ];
    let de = [
        "rot", "grün", "blau", "Haus", "Baum", "klein", "groß", "alt", "neu", "Hund",
    ];
    let mut text = String::new();
    for i in 0..n {
        let (a, b, c) = (i % 10, (i / 10) % 10, (i / 7) % 10);
        text.push_str(&format!(
            "the {} {} {}\tdas {} {} {}\n",
            words[a], words[b], words[c], de[a], de[b], de[c]
        ));
    }
    let p = dir.join("pairs.tsv");
    std::fs::write(&p, text).unwrap();
    p
}

/// The T5 model and per-epoch rows: each member's rows are its one-by-one
/// run's.
#[test]
fn t5_members_and_their_epoch_rows_equal_their_one_by_one_runs() {
    let dir = temp("t5");
    let mut r = Recipe::for_task(Task::TranslateT5, false);
    r.data = small_tsv(&dir, 200).display().to_string();
    r.vocab = 300;
    r.length = Length::Epochs(1);
    r.per_epoch = true;
    r.eval_sentences = 8;
    r.eval_max_new = 8;
    let prep = Prepared::new(&r).unwrap();
    let dev = Device::Cpu;
    let acts = [
        Activation::parse("gelu").unwrap(),
        Activation::parse("fused:x * sigmoid(x)").unwrap(),
    ];
    let lock = fitness::lockstep(&prep, &acts, 1, &dev, &RunOptions::default()).unwrap();
    for (a, o) in acts.iter().zip(&lock) {
        let single = fitness::run(&prep, a, 1, &dev, &RunOptions::default()).unwrap();
        same_run(o, &single);
        assert_eq!(o.epochs.len(), 1, "{a}");
        assert_eq!(o.epochs.len(), single.epochs.len());
        for (x, y) in o.epochs.iter().zip(&single.epochs) {
            for k in ["train_loss", "valid_loss", "ppl", "acc", "chrf"] {
                near(x[k].as_f64().unwrap(), y[k].as_f64().unwrap(), k);
            }
            assert_eq!(x["step"], y["step"]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
