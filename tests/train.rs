//! The training recipe and `actforge train`: losses fall, fused and
//! composed train alike, numerical failure is a scored failure with its
//! step, an interrupted or killed run resumes to the same result as an
//! uninterrupted one, the results files keep their stable keys, and the
//! paired statistics against the baseline (Holm, failures at the fitness
//! floor, directions) equal an independent recomputation from the runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actforge::fitness::{self, Length, Prepared, Recipe, RunOptions, Status, Task};
use actforge::metrics::{fitness as weighted_fitness, student_t_quantile, student_t_sf, Scores};
use actforge::op::Activation;
use candle_core::Device;
use common::procs;
use serde_json::Value;

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A small translation corpus (TSV) so that a T5 epoch is a few steps.
fn small_tsv(dir: &Path, n: usize) -> PathBuf {
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

/// A quick Q&A recipe on the built-in data.
fn qa_recipe(steps: u64) -> Recipe {
    let mut r = Recipe::for_task(Task::Qa, false);
    r.length = Length::Steps(steps);
    r.batch_size = 8;
    r.eval_examples = 32;
    r.eval_sentences = 8;
    r.eval_max_new = 8;
    r
}

#[test]
fn the_loss_falls_and_fused_and_composed_train_alike() {
    let prep = Prepared::new(&qa_recipe(30)).unwrap();
    let dev = Device::Cpu;
    let mut curves = Vec::new();
    for spec in [format!("fused:{QA}"), format!("composed:{QA}")] {
        let act = Activation::parse(&spec).unwrap();
        let o = fitness::run(&prep, &act, 3, &dev, &RunOptions::default()).unwrap();
        assert_eq!(o.status, Status::Ok, "{spec}");
        let (first, last) = o.loss_first_last();
        assert!(last < first - 0.5, "{spec}: loss {first} → {last}");
        let m = o.eval.as_ref().unwrap();
        assert!(m.ppl.is_finite() && m.ppl > 1.0 && m.acc > 0.0 && m.fitness > 0.0);
        curves.push(o.losses);
    }
    for (a, b) in curves[0].iter().zip(&curves[1]) {
        assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn every_activation_starts_from_the_same_weights_and_batches() {
    // With a learning rate of ~0 the first loss depends only on the initial
    // weights and the first batch: equal seeds give equal first losses for
    // activations that agree at init-scale inputs as closely as these do.
    let mut r = qa_recipe(1);
    r.lr = 1e-12;
    let prep = Prepared::new(&r).unwrap();
    let dev = Device::Cpu;
    let run = |spec: &str, seed| {
        fitness::run(
            &prep,
            &Activation::parse(spec).unwrap(),
            seed,
            &dev,
            &RunOptions::default(),
        )
        .unwrap()
        .losses[0]
    };
    let a = run("fused:gelu_like(x)", 5);
    assert_eq!(
        a,
        run("fused:gelu_like(x)", 5),
        "a run is a function of its seed"
    );
    let b = run("composed:gelu_like(x)", 5);
    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    assert_ne!(
        a,
        run("fused:gelu_like(x)", 6),
        "another seed draws other weights"
    );
}

#[test]
fn a_non_finite_loss_is_a_scored_failure_with_its_step() {
    let prep = Prepared::new(&qa_recipe(5)).unwrap();
    let act = Activation::parse("fused:exp(x * 1000)").unwrap();
    let o = fitness::run(&prep, &act, 1, &Device::Cpu, &RunOptions::default()).unwrap();
    match &o.status {
        Status::Failed { reason, step } => {
            assert!(reason.contains("non-finite"), "{reason}");
            assert!(*step < 5);
        }
        s => panic!("expected a failure, got {s:?}"),
    }
    assert!(o.fitness().is_none());
    assert!(o.to_json()["status"]
        .as_str()
        .unwrap()
        .contains("non-finite"));
}

#[test]
fn without_generated_sentences_bleu_is_left_out_of_the_fitness() {
    // Before: BLEU of no sentence counted as 0 with half the weight.
    let mut r = qa_recipe(2);
    r.eval_sentences = 0;
    let prep = Prepared::new(&r).unwrap();
    let act = Activation::parse("gelu").unwrap();
    let o = fitness::run(&prep, &act, 1, &Device::Cpu, &RunOptions::default()).unwrap();
    let e = o.eval.as_ref().unwrap();
    let scores = Scores {
        bleu: f64::NAN,
        chrf: f64::NAN,
        ppl: e.ppl,
        acc: e.acc,
    };
    let w = r.weights.without_bleu().unwrap();
    assert_eq!(e.fitness, weighted_fitness(&scores, &w, prep.vocab()));
    let with_zero = Scores {
        bleu: 0.0,
        ..scores
    };
    assert!(e.fitness > weighted_fitness(&with_zero, &r.weights, prep.vocab()));
    assert!(e.metrics_json()["bleu"].is_null() && e.metrics_json()["chrf"].is_null());
}

#[test]
fn an_interrupted_run_resumes_to_the_uninterrupted_result() {
    let prep = Prepared::new(&qa_recipe(12)).unwrap();
    let act = Activation::parse(&format!("fused:{QA}")).unwrap();
    let dev = Device::Cpu;
    let full = fitness::run(&prep, &act, 2, &dev, &RunOptions::default()).unwrap();
    let dir = temp("interrupt");
    let stop = AtomicBool::new(false);
    let stop_after = |i: &fitness::StepInfo| {
        if i.step == 5 {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let plan = fitness::CheckpointPlan {
        dir: dir.clone(),
        every: 4,
    };
    let first = fitness::run(
        &prep,
        &act,
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
    assert_eq!(first.status, Status::Interrupted { step: 5 });
    let resumed = fitness::run(
        &prep,
        &act,
        2,
        &dev,
        &RunOptions {
            checkpoint: Some(plan),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.status, Status::Ok);
    assert_eq!(resumed.losses, full.losses, "bit for bit");
    assert_eq!(
        resumed.eval.unwrap().metrics_json(),
        full.eval.unwrap().metrics_json()
    );
    // Another seed refuses this checkpoint.
    let e = fitness::run(
        &prep,
        &act,
        3,
        &dev,
        &RunOptions {
            checkpoint: Some(fitness::CheckpointPlan { dir, every: 4 }),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("another run"), "{e}");
}

fn actforge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_actforge"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn results(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

/// The comparable part of each run (timings differ).
fn runs_of(v: &Value) -> Vec<(Value, Value, Value)> {
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["activation"].clone(),
                r["losses"].clone(),
                r["metrics"].clone(),
            )
        })
        .collect()
}

const TRAIN_ARGS: [&str; 14] = [
    "train",
    "--task",
    "qa",
    "--act",
    "gelu",
    "--act",
    QA,
    "--seeds",
    "2",
    "--steps",
    "16",
    "--batch-size",
    "8",
    "--eval-sentences=8",
];

#[test]
fn a_killed_train_command_resumes_to_the_same_results() {
    let whole = temp("whole");
    let o = actforge()
        .args(TRAIN_ARGS)
        .args(["--out", whole.to_str().unwrap(), "--checkpoint-every", "4"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("Welch") && text.contains("sample answers"),
        "{text}"
    );

    let killed = temp("killed");
    let mut child = actforge()
        .args(TRAIN_ARGS)
        .args(["--out", killed.to_str().unwrap(), "--checkpoint-every", "4"])
        .spawn()
        .unwrap();
    // Kill it once the second run has a checkpoint (the first is logged),
    // a moment checked again on the frozen process.
    let moment = || {
        let log = std::fs::read_to_string(killed.join("runs.jsonl")).unwrap_or_default();
        let ckpt = killed
            .join("checkpoints")
            .join("act1-seed1")
            .join("checkpoint.json");
        log.lines().count() >= 1 && ckpt.exists() && !killed.join("results.json").exists()
    };
    loop {
        if moment() {
            let frozen = procs::Frozen::new(&[child.id()]);
            if moment() {
                child.kill().unwrap(); // SIGKILL
                drop(frozen);
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait().unwrap();
    assert!(!killed.join("results.json").exists());
    let o = actforge()
        .args(["train", "--resume", killed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(runs_of(&results(&killed)), runs_of(&results(&whole)));

    // The stable keys.
    let v = results(&whole);
    for r in v["runs"].as_array().unwrap() {
        for k in [
            "activation",
            "seed",
            "status",
            "loss_first",
            "loss_last",
            "metrics",
        ] {
            assert!(!r[k].is_null(), "runs[].{k}");
        }
        for k in ["bleu", "chrf", "ppl", "acc", "fitness"] {
            assert!(r["metrics"][k].is_number(), "metrics.{k}");
        }
    }
    let s = v["summary"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert!(s[0]["welch_p"].is_null());
    for k in ["bleu", "chrf", "ppl", "acc", "fitness"] {
        assert!(
            s[1][k]["mean"].is_number() && s[1][k]["ci95"].is_array(),
            "{k}"
        );
        assert!(s[1]["welch_p"].get(k).is_some(), "welch_p.{k}");
    }
    for f in [
        "results.csv",
        "learning_curves.png",
        "tokenizer.json",
        "config.json",
    ] {
        assert!(whole.join(f).is_file(), "{f}");
    }
    // A finished or existing directory is never overwritten.
    let o = actforge()
        .args(TRAIN_ARGS)
        .args(["--out", whole.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
}

#[test]
fn the_t5_task_prints_per_epoch_rows() {
    let dir = temp("t5");
    let data = small_tsv(&dir, 300);
    let out = dir.join("run");
    let o = actforge()
        .args([
            "train",
            "--task",
            "translate-t5",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--act",
            "gelu",
            "--act",
            "silu(x)",
            "--vocab",
            "300",
            "--eval-sentences=8",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("per epoch"), "{text}");
    let v = results(&out);
    let epochs = v["runs"][0]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert!(epochs[1]["bleu"].is_number() && epochs[1]["valid_loss"].is_number());
}

#[test]
fn bench_step_reports_all_three_variants() {
    let o = actforge()
        .args([
            "bench-step",
            "--task",
            "qa",
            "--iters",
            "2",
            "--warmup",
            "0",
            "--batch-size",
            "4",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["gelu", "fused", "composed"] {
        assert!(v["step_ms"][k].as_f64().unwrap() > 0.0, "{k}");
        let share = v["activation_share"][k].as_f64().unwrap();
        assert!(share > 0.0, "{k}: {share}");
    }
}

/// The activations of the paired-statistics test: the baseline, two that
/// train, and one whose loss is non-finite at once on every seed.
const PAIRED_ACTS: [&str; 4] = ["gelu", "silu(x)", QA, "exp(x * 1000)"];
const METRIC_KEYS: [(&str, bool); 5] = [
    ("bleu", true),
    ("chrf", true),
    ("ppl", false),
    ("acc", true),
    ("fitness", true),
];

/// The value of `key` for activation `a` at `seed`, recomputed from
/// `runs` by the documented rule: fitness counts a failed run as 0; other
/// metrics only count successful runs.
fn run_value(runs: &[Value], a: usize, seed: u64, key: &str) -> Option<f64> {
    let r = runs
        .iter()
        .find(|r| r["activation"] == PAIRED_ACTS[a] && r["seed"] == seed)
        .expect("every run is recorded");
    let ok = r["status"] == "ok";
    match (key, ok) {
        ("fitness", false) => Some(0.0),
        (_, false) => None,
        _ => r["metrics"][key].as_f64(),
    }
}

/// (n, mean, ci95, p) of the paired t-test, by hand.
fn paired_by_hand(d: &[f64]) -> (usize, f64, Option<(f64, f64)>, Option<f64>) {
    let n = d.len();
    if n == 0 {
        return (0, f64::NAN, None, None);
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (n, mean, None, None);
    }
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    let q = student_t_quantile(0.975, (n - 1) as f64);
    let p = if sd == 0.0 {
        (mean != 0.0).then_some(0.0)
    } else {
        Some((2.0 * student_t_sf((mean / se).abs(), (n - 1) as f64)).min(1.0))
    };
    (n, mean, Some((mean - q * se, mean + q * se)), p)
}

/// Holm's adjustment, by hand: sorted ascending, (m − i)·p, running
/// maximum, capped at 1.
fn holm_by_hand(ps: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..ps.len()).filter(|&i| ps[i].is_some()).collect();
    idx.sort_by(|&a, &b| ps[a].unwrap().partial_cmp(&ps[b].unwrap()).unwrap());
    let m = idx.len();
    let mut out = vec![None; ps.len()];
    let mut run = 0.0f64;
    for (i, &k) in idx.iter().enumerate() {
        run = run.max(((m - i) as f64 * ps[k].unwrap()).min(1.0));
        out[k] = Some(run);
    }
    out
}

fn near(ours: &Value, want: f64, what: &str) {
    let got = ours.as_f64().unwrap_or_else(|| panic!("{what}: {ours}"));
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1e-9),
        "{what}: results.json {got}, recomputed {want}"
    );
}

#[test]
fn train_writes_paired_statistics_that_equal_a_recomputation_from_the_runs() {
    let dir = temp("paired");
    let mut args: Vec<&str> = vec!["train", "--task", "qa", "--seeds", "3", "--steps", "12"];
    args.extend(["--batch-size", "8", "--eval-sentences=8", "--samples", "0"]);
    for a in PAIRED_ACTS {
        args.extend(["--act", a]);
    }
    let o = actforge()
        .args(&args)
        .args(["--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let v = results(&dir);
    let runs = v["runs"].as_array().unwrap();
    let summary = v["summary"].as_array().unwrap();
    assert_eq!(runs.len(), 12);
    assert_eq!(v["statistics"]["fitness_floor"], 0.0);
    assert_eq!(v["statistics"]["alpha"], 0.05);

    // Failures count: the exponential fails on every seed and is logged
    // with the fitness floor; the others never fail.
    for (a, s) in summary.iter().enumerate() {
        assert_eq!(s["activation"], PAIRED_ACTS[a]);
        assert_eq!(s["runs"], 3);
        assert_eq!(s["runs_failed"], if a == 3 { 3 } else { 0 }, "{a}");
    }
    for r in runs.iter().filter(|r| r["activation"] == PAIRED_ACTS[3]) {
        assert!(r["status"].as_str().unwrap().contains("non-finite"));
        assert_eq!(r["metrics"]["fitness"], 0.0);
    }
    assert!(summary[0]["vs_baseline"].is_null());

    for (key, higher) in METRIC_KEYS {
        let mut ps = Vec::new();
        let mut tests = Vec::new();
        for a in 1..PAIRED_ACTS.len() {
            let d: Vec<f64> = (1..=3u64)
                .filter_map(|s| Some(run_value(runs, a, s, key)? - run_value(runs, 0, s, key)?))
                .collect();
            let t = paired_by_hand(&d);
            ps.push(t.3);
            tests.push(t);
        }
        let holm = holm_by_hand(&ps);
        for (i, (n, mean, ci, p)) in tests.into_iter().enumerate() {
            let a = i + 1;
            let what = format!("{} {key}", PAIRED_ACTS[a]);
            let got = &summary[a]["vs_baseline"][key];
            assert_eq!(got["n"], n, "{what}");
            match n {
                0 => assert!(got["mean_diff"].is_null(), "{what}"),
                _ => near(&got["mean_diff"], mean, &format!("{what} mean_diff")),
            }
            match ci {
                Some((lo, hi)) => {
                    near(&got["ci95"][0], lo, &format!("{what} ci low"));
                    near(&got["ci95"][1], hi, &format!("{what} ci high"));
                }
                None => assert!(got["ci95"][0].is_null() && got["ci95"][1].is_null()),
            }
            match (p, holm[i]) {
                (Some(p), Some(h)) => {
                    near(&got["p"], p, &format!("{what} p"));
                    near(&got["p_holm"], h, &format!("{what} p_holm"));
                    let better = if h < 0.05 {
                        serde_json::json!((mean > 0.0) == higher)
                    } else {
                        Value::Null
                    };
                    assert_eq!(got["better"], better, "{what}");
                }
                _ => {
                    assert!(got["p"].is_null() && got["p_holm"].is_null(), "{what}");
                    assert!(got["better"].is_null(), "{what}");
                }
            }
        }
    }
    // The always-failing activation: fitness compared on every seed (its
    // floor against the baseline), the other metrics on none.
    let fail = &summary[3]["vs_baseline"];
    assert_eq!(fail["fitness"]["n"], 3);
    assert!(fail["fitness"]["mean_diff"].as_f64().unwrap() < 0.0);
    assert_ne!(fail["fitness"]["better"], true);
    assert_eq!(fail["acc"]["n"], 0);
    // Welch's p stays, as the secondary column.
    assert!(summary[1]["welch_p"]["fitness"].is_number());
    // What the fitness is made of, measured.
    let shares = &v["fitness_shares"];
    let sum: f64 = ["bleu", "ppl", "acc"]
        .iter()
        .map(|k| shares[*k].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-12, "{shares}");
    // The resolution of each comparison.
    assert!(v["resolution"][0].is_null());
    assert!(v["resolution"][1]["fitness_mde"].as_f64().unwrap() > 0.0);
    // The table: paired block, Holm, verdict words, failures, the
    // baseline by what trains.
    for want in [
        "paired differences from gelu (candle, tanh)",
        "Holm p",
        "Welch p",
        "resolution:",
        "failed runs:",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert!(
        ["better", "worse", "no difference"]
            .iter()
            .any(|w| text.contains(w)),
        "{text}"
    );
}

// ---- Issue 17: refused runs leave nothing, one process per directory,
// ---- edited state on resume

fn stderr_text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Wait for `child`, which must not block (a refused run): a hang fails
/// at the backstop.
fn finished(mut child: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + procs::HANG_BACKSTOP;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after {:?}: it blocks", procs::HANG_BACKSTOP);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_refused_train_leaves_no_directory() {
    let base = temp("refused");
    std::fs::create_dir_all(&base).unwrap();
    let fifo = base.join("data.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.display().to_string();
    let huge = u64::MAX.to_string();
    for (extra, code, needle) in [
        (vec!["--preset", "gpt-huge"], 2, "gpt-huge"),
        (
            vec!["--data", "/nonexistent/qa.txt"],
            1,
            "/nonexistent/qa.txt",
        ),
        (vec!["--data", fifo.as_str()], 1, "not a regular file"),
        (vec!["--data", "/dev/zero"], 1, "not a regular file"),
        (
            vec!["--vocab", "4294967296"],
            2,
            "--vocab 4294967296 is above the limit",
        ),
        (vec!["--vocab", "10"], 2, "--vocab"),
        (vec!["--seeds", huge.as_str()], 2, "--seeds"),
        (
            vec!["--batch-size", "100000"],
            2,
            "--batch-size 100000 is above the limit",
        ),
    ] {
        let out = base.join("run");
        let child = actforge()
            .args([
                "train", "--task", "qa", "--act", "gelu", "--steps", "2", "--out",
            ])
            .arg(&out)
            .args(&extra)
            .spawn()
            .unwrap();
        let o = finished(child);
        let err = stderr_text(&o);
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left {}", out.display());
        // Nor anything beside it.
        let left: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "data.fifo")
            .collect();
        assert!(left.is_empty(), "{extra:?}: {left:?}");
    }
}

const LOCK_ARGS: [&str; 12] = [
    "train",
    "--task",
    "qa",
    "--act",
    "gelu",
    "--seeds",
    "1",
    "--batch-size",
    "8",
    "--eval-sentences=8",
    "--checkpoint-every",
    "2",
];

#[test]
fn a_second_train_is_refused_while_the_first_works_and_edits_are_refused_on_resume() {
    // The first process is stopped (SIGSTOP) while it holds the directory:
    // its lock file exists and its results do not. If it happened to
    // finish first, it is tried again with more steps.
    let mut steps = 200u64;
    let (dir, first, frozen) = loop {
        let dir = temp(&format!("locked-{steps}"));
        let mut first = actforge()
            .args(LOCK_ARGS)
            .args(["--steps", &steps.to_string(), "--out"])
            .arg(&dir)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + procs::HANG_BACKSTOP;
        while !dir.join("config.json").exists() && first.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the run directory never appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let frozen = procs::Frozen::new(&[first.id()]);
        let holding = first.try_wait().unwrap().is_none()
            && dir.join(".actforge.lock").exists()
            && !dir.join("results.json").exists();
        if holding {
            break (dir, first, frozen);
        }
        drop(frozen);
        let _ = first.kill();
        let _ = first.wait();
        steps *= 4;
    };
    let o = actforge()
        .args(["train", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = stderr_text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is in use") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let o = actforge()
        .args(LOCK_ARGS)
        .args(["--steps", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr_text(&o));
    assert!(stderr_text(&o).contains("already exists"));
    // kill -9: its lock file stays, and does not block a resume.
    let mut first = first;
    first.kill().unwrap();
    drop(frozen);
    first.wait().unwrap();
    assert!(dir.join(".actforge.lock").exists());
    let o = actforge()
        .args(["train", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_text(&o));
    assert!(dir.join("results.json").exists());
    assert!(!dir.join(".actforge.lock").exists());
    // An edited config.json (another activation, other steps) is refused.
    let config = dir.join("config.json");
    let original = std::fs::read_to_string(&config).unwrap();
    for (from, to) in [("\"gelu\"", "\"silu(x)\""), ("\"steps\":", "\"epochs\":")] {
        assert!(original.contains(from), "{from}");
        std::fs::write(&config, original.replacen(from, to, 1)).unwrap();
        let o = actforge()
            .args(["train", "--resume"])
            .arg(&dir)
            .output()
            .unwrap();
        let err = stderr_text(&o);
        assert_eq!(o.status.code(), Some(1), "{from}: {err}");
        assert!(
            err.contains("config.json") && err.contains("recorded hash"),
            "{err}"
        );
    }
}

#[test]
fn resumed_runs_must_prepare_the_data_they_started_with() {
    use actforge::experiment::{check_data, Experiment};
    let prep = Prepared::new(&qa_recipe(4)).unwrap();
    let mut exp = Experiment {
        recipe: prep.recipe.clone(),
        activations: vec!["gelu".into()],
        seeds: vec![1],
        device: actforge::device::Device::Cpu,
        checkpoint_every: 0,
        samples: 0,
        command: vec![],
        data: Some(prep.describe()),
    };
    let config = Path::new("runs/x/config.json");
    check_data(&exp, &prep, config).unwrap();
    let mut other = prep.describe();
    other["corpus_hash"] = serde_json::json!("0123456789abcdef");
    exp.data = Some(other);
    let e = check_data(&exp, &prep, config).unwrap_err().to_string();
    assert!(
        e.contains("runs/x/config.json") && e.contains("corpus_hash"),
        "{e}"
    );
}

/// The final verdict runs its (activation, seed) runs on several threads:
/// every run's metrics equal those of the runs one at a time, and the
/// summary too.
#[test]
fn runs_on_several_threads_equal_runs_one_at_a_time() {
    use actforge::experiment::{run_built_on, Experiment, Quiet};
    let prep = Prepared::new(&qa_recipe(3)).unwrap();
    let exp = Experiment {
        recipe: prep.recipe.clone(),
        activations: vec!["gelu".into(), "fused:silu(ARG0)".into()],
        seeds: vec![5, 6],
        device: actforge::device::Device::Cpu,
        checkpoint_every: 0,
        samples: 0,
        command: vec![],
        data: Some(prep.describe()),
    };
    let acts: Vec<Activation> = exp
        .activations
        .iter()
        .map(|s| actforge::experiment::parse_activation(s).unwrap())
        .collect();
    let mut got = Vec::new();
    for workers in [1, 3] {
        let dir = temp(&format!("threads-{workers}"));
        std::fs::create_dir_all(&dir).unwrap();
        let r = run_built_on(&exp, &acts, &prep, &dir, &Quiet, None, workers).unwrap();
        assert!(!r.interrupted);
        assert_eq!(r.runs.len(), 4);
        let lines = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 4, "each run logged once");
        let per_run: Vec<(Value, Value, Value)> = r
            .runs
            .iter()
            .map(|v| {
                (
                    v["activation_index"].clone(),
                    v["seed"].clone(),
                    v["metrics"].clone(),
                )
            })
            .collect();
        let summary: Vec<Value> = r.summary.iter().map(|s| s.to_json()).collect();
        got.push((per_run, summary));
    }
    assert_eq!(got[0], got[1]);
}
