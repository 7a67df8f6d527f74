//! The GP engine end to end, with the synthetic evaluator so that every
//! test runs in seconds: determinism over worker counts, dedup by meaning
//! (canonical and functional, with logged merges and hit counters),
//! screening reasons, NSGA-II outputs, resume after a real SIGKILL and
//! after Ctrl-C, and the handling of finished, corrupt and foreign run
//! directories.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actforge::search::config::{EvaluatorKind, Settings};
use actforge::search::exec::executor::{Evaluate, InProcess, Job, JobResult};
use actforge::search::progress::Silent;
use actforge::search::seeding::Seeding;
use actforge::search::synthetic::Synthetic;
use actforge::search::{Outcome, Search};
use common::harness::{bin, json, lines, tmp};
use common::procs;
use serde_json::Value;

/// `actforge search` with the synthetic evaluator, quiet, no export.
fn search_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "search",
        "--evaluator",
        "synthetic",
        "--quiet",
        "--no-export",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(dir.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_search(dir: &Path, extra: &[&str]) -> Output {
    let out = bin().args(search_args(dir, extra)).output().unwrap();
    assert!(
        out.status.success(),
        "search failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn resume(dir: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["search", "--quiet", "--resume"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// Logbook rows without their wall-clock columns.
fn logbook(dir: &Path) -> Vec<Value> {
    lines(&dir.join("logbook.jsonl"))
        .into_iter()
        .map(|mut r| {
            for k in [
                "seconds",
                "eval_seconds",
                "screen_seconds",
                "compile_seconds",
            ] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect()
}

/// Evaluations by hash and seeds, without time and worker; a (hash, seeds)
/// logged twice (trained twice) panics. Without racing a candidate has one
/// line, with it (the default) one line per seed.
fn evaluations(dir: &Path) -> HashMap<(String, String), Value> {
    let mut m = HashMap::new();
    for mut r in lines(&dir.join("evaluations.jsonl")) {
        let o = r.as_object_mut().unwrap();
        o.remove("seconds");
        o.remove("worker");
        let k = (
            o["hash"].as_str().unwrap().to_string(),
            o["seeds"].to_string(),
        );
        assert!(m.insert(k.clone(), r).is_none(), "{k:?} evaluated twice");
    }
    m
}

/// Evaluations by hash, for a run without racing (one line per key).
fn by_hash(dir: &Path) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    for ((h, _), v) in evaluations(dir) {
        assert!(m.insert(h.clone(), v).is_none(), "{h} evaluated twice");
    }
    m
}

const SMALL: &[&str] = &["--pop", "10", "--gens", "4", "--hof", "4", "--seed", "7"];

#[test]
fn same_seed_same_hall_of_fame_with_1_and_3_workers() {
    let (a, b, c) = (tmp("det-1"), tmp("det-3"), tmp("det-other"));
    let sleepy: Vec<&str> = SMALL
        .iter()
        .copied()
        .chain(["--synthetic-sleep-ms", "2", "--include"])
        .collect();
    run_search(&a, &[&sleepy[..], &["--workers", "1"]].concat());
    run_search(&b, &[&sleepy[..], &["--workers", "3"]].concat());
    let hof = json(&a.join("hall_of_fame.json"));
    assert_eq!(hof.as_array().unwrap().len(), 4);
    assert_eq!(hof, json(&b.join("hall_of_fame.json")));
    assert_eq!(logbook(&a), logbook(&b));
    assert_eq!(evaluations(&a), evaluations(&b));
    assert_eq!(json(&a.join("pareto.json")), json(&b.join("pareto.json")));
    let cp = |d: &Path| {
        let mut v = json(&d.join("checkpoint.json"));
        let o = v.as_object_mut().unwrap();
        o.remove("logbook");
        o.remove("elapsed_seconds");
        v
    };
    assert_eq!(cp(&a), cp(&b), "population, generator state and archives");
    // A different seed searches differently.
    let other: Vec<&str> = ["--pop", "10", "--gens", "4", "--hof", "4", "--seed", "8"].to_vec();
    run_search(&c, &other);
    assert_ne!(logbook(&a), logbook(&c));
    // config.json records the command line, every setting and the seeds.
    let config = json(&a.join("config.json"));
    let cmd: Vec<&str> = config["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(cmd.windows(2).any(|w| w == ["--workers", "1"]), "{cmd:?}");
    assert_eq!(config["settings"]["seed"], 7);
    assert_eq!(config["settings"]["pop"], 10);
    // Every seed a candidate can earn: racing, up to --max-seeds 4.
    assert_eq!(config["training_seeds"], serde_json::json!([7, 8, 9, 10]));
    assert!(config["versions"]["actforge"].is_string());
}

/// Without racing (--no-racing) every candidate trains once with the same
/// fixed --seeds, one line per candidate, the same with 1 and 3 workers,
/// and the hall of fame is ranked by the raw fitness; --seeds alone (racing
/// on) is a usage error that names --no-racing.
#[test]
fn fixed_seeds_without_racing_log_one_line_per_candidate_with_any_worker_count() {
    let (a, b) = (tmp("fixed-1"), tmp("fixed-3"));
    let fixed: Vec<&str> = SMALL
        .iter()
        .copied()
        .chain(["--include", "--no-racing", "--seeds", "2"])
        .collect();
    run_search(&a, &[&fixed[..], &["--workers", "1"]].concat());
    run_search(&b, &[&fixed[..], &["--workers", "3"]].concat());
    let evals = by_hash(&a); // one line per key
    assert!(evals.len() > 4);
    for v in evals.values().filter(|v| v["screened"].is_null()) {
        assert_eq!(v["seeds"], serde_json::json!([7, 8]), "{v}");
    }
    assert_eq!(evaluations(&a), evaluations(&b));
    let hof = json(&a.join("hall_of_fame.json"));
    assert_eq!(hof, json(&b.join("hall_of_fame.json")));
    let fitness: Vec<f64> = hof
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["objectives"][0], e["fitness"], "raw fitness: {e}");
            e["fitness"].as_f64().unwrap()
        })
        .collect();
    assert!(fitness.windows(2).all(|w| w[0] >= w[1]), "{fitness:?}");
    let config = json(&a.join("config.json"));
    assert_eq!(config["training_seeds"], serde_json::json!([7, 8]));
    assert!(config["settings"]["seeding"]["racing"].is_null());
    let out = bin()
        .args(search_args(&tmp("fixed-racing"), &["--seeds", "2"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--no-racing"),
        "{}",
        stderr_of(&out)
    );
}

/// Ray tasks evaluate one candidate each: a lockstep search with the Ray
/// executor is refused before a run directory exists, naming
/// --no-lockstep (the same check runs on --resume of a lockstep run).
#[test]
fn lockstep_with_the_ray_executor_is_a_usage_error() {
    let dir = tmp("lockstep-ray");
    let out = bin()
        .args(search_args(&dir, &["--lockstep", "--executor", "ray"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("--no-lockstep"),
        "{}",
        stderr_of(&out)
    );
    assert!(!dir.exists(), "a run directory was made");
}

/// Counts evaluations per key around the synthetic evaluator.
struct Counting {
    inner: Synthetic,
    calls: Mutex<HashMap<u64, usize>>,
}

impl Evaluate for Counting {
    fn evaluate(&self, job: &Job) -> JobResult {
        *self.calls.lock().unwrap().entry(job.key()).or_default() += 1;
        self.inner.evaluate(job)
    }
}

fn library_run(dir: &Path, settings: Settings, workers: usize) -> (Search, Arc<Counting>) {
    let mut s = Search::create(dir, settings, &["test".to_string()]).unwrap();
    let ev = Arc::new(Counting {
        inner: Synthetic::new(0),
        calls: Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut exec = InProcess::new(ev.clone(), workers, stop.clone());
    let retrain = Synthetic::new(0);
    match s.run(&mut exec, &retrain, &mut Silent, &stop).unwrap() {
        Outcome::Finished(_) => {}
        Outcome::Interrupted { .. } => panic!("not interrupted"),
    }
    (s, ev)
}

fn synthetic(start_with: &[&str], pop: usize, gens: usize) -> Settings {
    Settings {
        evaluator: EvaluatorKind::Synthetic { sleep_ms: 0 },
        start_with: start_with.iter().map(|s| s.to_string()).collect(),
        pop,
        lambda: pop,
        gens,
        export: false,
        retrain_top: 0,
        hof: 5,
        seed: 3,
        // Dedup and screening are checked on fixed seeds (one call per
        // key); the racing tests below check (key, seed) pairs.
        seeding: Seeding::LEGACY,
        ..Settings::default()
    }
}

#[test]
fn an_equivalent_candidate_is_evaluated_once_and_clones_keep_their_fitness() {
    let dir = tmp("dedup");
    let start = [
        "safe_add(ARG0, 1.0)",
        "safe_add(1.0, ARG0)",
        "safe_mul(ARG0, safe_add(ARG0, 1.0))",
        "safe_add(safe_mul(ARG0, ARG0), ARG0)",
        "safe_mul(ARG0, safe_add(ARG0, 1.0))",
    ];
    let (_s, ev) = library_run(&dir, synthetic(&start, 5, 6), 2);
    let calls = ev.calls.lock().unwrap();
    assert!(
        calls.values().all(|&n| n == 1),
        "a key evaluated twice: {calls:?}"
    );
    let evals = by_hash(&dir);
    let evaluated: HashSet<&String> = evals
        .iter()
        .filter(|(_, v)| v["screened"].is_null())
        .map(|(h, _)| h)
        .collect();
    assert_eq!(evaluated.len(), calls.len());
    let book = logbook(&dir);
    // Generation 0: the commuted copy is a canonical hit, the repeated text
    // also a syntactic one, x·(x + 1) = x + x² a functional one.
    assert_eq!(book[0]["syntactic_hits"], 1);
    assert_eq!(book[0]["canonical_hits"], 2);
    assert_eq!(book[0]["functional_hits"], 1);
    let merges = lines(&dir.join("merges.jsonl"));
    assert_eq!(merges[0]["formula"], "add(x, pow(x, 2.0))");
    assert_eq!(merges[0]["from_formula"], "mul(x, add(1.0, x))");
    let from = merges[0]["took_fitness_of"].as_str().unwrap();
    assert_eq!(merges[0]["fitness"], evals[from]["fitness"]);
    assert!(merges[0]["distance"].as_f64().unwrap() <= 1.0);
    // Later generations are served by the cache, syntactic ≤ canonical.
    let served: u64 = book[1..]
        .iter()
        .map(|r| r["canonical_hits"].as_u64().unwrap())
        .sum();
    assert!(served > 0);
    for r in &book {
        assert!(r["syntactic_hits"].as_u64() <= r["canonical_hits"].as_u64());
        let sum = r["evaluations"].as_u64().unwrap()
            + r["canonical_hits"].as_u64().unwrap()
            + r["functional_hits"].as_u64().unwrap()
            + (0..6)
                .map(|i| {
                    let k = [
                        "nonfinite",
                        "constant",
                        "exploding",
                        "vanishing",
                        "linear",
                        "compile",
                    ][i];
                    r[format!("screened_{k}")].as_u64().unwrap()
                })
                .sum::<u64>();
        assert_eq!(
            sum,
            r["offspring"].as_u64().unwrap(),
            "every offspring accounted for"
        );
    }
    // Every member of the population keeps the fitness of its formula.
    let cp = json(&dir.join("checkpoint.json"));
    for ind in cp["population"].as_array().unwrap() {
        let h = ind["hash"].as_str().unwrap();
        let fitness = evals
            .get(h)
            .map(|e| e["fitness"].clone())
            .unwrap_or_else(|| {
                lines(&dir.join("merges.jsonl"))
                    .into_iter()
                    .find(|m| m["hash"] == h)
                    .unwrap()["fitness"]
                    .clone()
            });
        assert_eq!(ind["fitness"][0], fitness, "{h}");
    }
}

#[test]
fn no_fingerprint_evaluates_functional_twins() {
    let dir = tmp("nofp");
    let start = [
        "safe_mul(ARG0, safe_add(ARG0, 1.0))",
        "safe_add(safe_mul(ARG0, ARG0), ARG0)",
    ];
    let settings = Settings {
        fingerprint: false,
        ..synthetic(&start, 4, 0)
    };
    let (_s, ev) = library_run(&dir, settings, 1);
    let book = logbook(&dir);
    assert_eq!(book[0]["functional_hits"], 0);
    assert!(lines(&dir.join("merges.jsonl")).is_empty());
    assert!(ev.calls.lock().unwrap().len() >= 2);
}

#[test]
fn screening_counts_every_reason() {
    let dir = tmp("screen");
    let start = [
        "safe_sub(ARG0, ARG0)",
        "exp(exp(ARG0))",
        "mul(10000, ARG0)",
        "mul(0.01, relu(sub(ARG0, 3.5)))",
        "safe_div(ARG0, 1.0)",
        "gelu(ARG0)",
    ];
    let (_s, ev) = library_run(&dir, synthetic(&start, 6, 0), 1);
    let row = &logbook(&dir)[0];
    assert_eq!(row["screened_constant"], 1);
    assert_eq!(row["screened_nonfinite"], 1);
    assert_eq!(row["screened_exploding"], 1);
    assert_eq!(row["screened_vanishing"], 1);
    assert_eq!(row["screened_linear"], 1);
    assert_eq!(row["evaluations"], 1);
    assert_eq!(ev.calls.lock().unwrap().len(), 1, "only GELU was trained");
    let reasons: HashSet<String> = evaluations(&dir)
        .values()
        .filter_map(|v| v["screened"].as_str().map(String::from))
        .collect();
    let want: HashSet<String> = ["constant", "nonfinite", "exploding", "vanishing", "linear"]
        .map(String::from)
        .into();
    assert_eq!(reasons, want);
    for v in evaluations(&dir)
        .values()
        .filter(|v| !v["screened"].is_null())
    {
        assert!(v["fitness"].is_null());
        assert!(v["failure"].as_str().unwrap().starts_with("screened: "));
    }
    let hof = json(&dir.join("hall_of_fame.json"));
    assert_eq!(
        hof.as_array().unwrap().len(),
        1,
        "failures never enter the hall of fame"
    );
}

/// NVRTC is available, or the test may skip (unless CI requires it).
fn nvrtc_or_skip() -> bool {
    if actforge::runtime::nvrtc::load().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("ACTFORGE_REQUIRE_NVRTC").is_none(),
        "ACTFORGE_REQUIRE_NVRTC is set but NVRTC cannot be loaded"
    );
    eprintln!("skipped: NVRTC is not available (scripts/install-cuda-tools.sh installs it)");
    false
}

#[test]
fn compile_check_batch_compiles_each_generation() {
    if !nvrtc_or_skip() {
        return;
    }
    let dir = tmp("compile");
    let settings = Settings {
        compile_check: true,
        ..synthetic(&["gelu(ARG0)", "silu(ARG0)"], 6, 1)
    };
    library_run(&dir, settings, 1);
    let rows = lines(&dir.join("logbook.jsonl"));
    assert!(rows[0]["compile_seconds"].as_f64().unwrap() > 0.0);
    assert!(rows.iter().all(|r| r["screened_compile"] == 0));
}

#[test]
fn nsga2_writes_a_pareto_front() {
    let dir = tmp("nsga2");
    let out = run_search(
        &dir,
        &[
            "--objective",
            "score,complexity",
            "--pop",
            "12",
            "--gens",
            "3",
            "--hof",
            "3",
            "--include",
            "--json",
        ],
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "finished");
    let front = json(&dir.join("pareto.json"));
    let front = front.as_array().unwrap();
    assert!(front.len() >= 2, "{front:?}");
    let pts: Vec<(f64, f64)> = front
        .iter()
        .map(|e| (e["fitness"].as_f64().unwrap(), e["nodes"].as_f64().unwrap()))
        .collect();
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            assert!(
                a.0 > b.0 && a.1 > b.1,
                "best fitness first, each simpler one worse: {pts:?}"
            );
        }
    }
    assert!(dir.join("pareto.png").exists());
    let cp = json(&dir.join("checkpoint.json"));
    for ind in cp["population"].as_array().unwrap() {
        assert_eq!(ind["fitness"].as_array().unwrap().len(), 2);
    }
    let hof = json(&dir.join("hall_of_fame.json"));
    assert_eq!(hof[0]["objectives"].as_array().unwrap().len(), 2);
    // Every outcome of the run is where the summary says.
    for key in [
        "hall of fame",
        "Pareto front",
        "fitness plot",
        "activation plots",
        "final retrain",
    ] {
        let p = summary["files"][key].as_str().unwrap();
        assert!(Path::new(p).exists(), "{key}: {p}");
    }
    let retrain = summary["retrain"].as_array().unwrap();
    assert_eq!(retrain[0]["activation"], "gelu");
    assert_eq!(retrain.len(), 3, "GELU and the default --retrain-top 2");
    assert!(dir.join("hall_of_fame").join("hof-1.png").exists());
}

fn spawn_search(dir: &Path, extra: &[&str]) -> Child {
    bin()
        .args(search_args(dir, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The search frozen (SIGSTOP) at a moment when `ready` holds for its run
/// directory, checked again on the frozen process, so that whatever the
/// test then does lands at that moment however fast or loaded the machine
/// is. The search is thawed when the guard drops (a signal sent while it
/// is frozen is delivered then). `None` if the search ended first.
fn freeze_when(
    dir: &Path,
    child: &mut Child,
    ready: impl Fn(&Path) -> bool,
) -> Option<procs::Frozen> {
    loop {
        if ready(dir) {
            let frozen = procs::Frozen::new(&[child.id()]);
            if ready(dir) {
                return Some(frozen);
            }
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Start the search of `args` (with a synthetic sleep per evaluation, in
/// the run directory `dir`) and freeze it at a moment when `ready` holds.
/// The moment lasts at least one evaluation's sleep: should the test not
/// be scheduled within it (a very loaded machine), the run is started
/// again with a four times longer sleep, so the moment is caught on any
/// machine.
fn spawn_frozen_at(
    dir: &Path,
    args: &[&str],
    ready: impl Fn(&Path) -> bool,
) -> (Child, procs::Frozen) {
    for sleep_ms in [100u64, 400, 1600, 6400] {
        let _ = std::fs::remove_dir_all(dir);
        let sleep = sleep_ms.to_string();
        let extra: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--synthetic-sleep-ms", &sleep])
            .collect();
        let mut child = spawn_search(dir, &extra);
        if let Some(frozen) = freeze_when(dir, &mut child, &ready) {
            return (child, frozen);
        }
    }
    panic!("the search always ended before the moment the test waits for");
}

/// The first generation from `first` on in which the uninterrupted run
/// `whole` evaluated at least two formulas: run with one worker, such a
/// generation is mid-way (evaluations logged past its checkpoint) for at
/// least one evaluation's time.
fn generation_with_two_evaluations(whole: &Path, first: u64) -> u64 {
    let mut per_generation: HashMap<u64, usize> = HashMap::new();
    for r in lines(&whole.join("evaluations.jsonl")) {
        *per_generation
            .entry(r["generation"].as_u64().unwrap())
            .or_default() += 1;
    }
    (first..)
        .take(100)
        .find(|g| per_generation.get(g).is_some_and(|&n| n >= 2))
        .expect("a generation with two evaluations")
}

/// Mid-generation: at least generation `g` checkpointed and more
/// evaluations logged than the checkpoint accounts for.
fn mid_generation(g: u64) -> impl Fn(&Path) -> bool {
    move |dir: &Path| {
        let Ok(text) = std::fs::read_to_string(dir.join("checkpoint.json")) else {
            return false;
        };
        let Ok(cp) = serde_json::from_str::<Value>(&text) else {
            return false;
        };
        let logged = std::fs::read_to_string(dir.join("evaluations.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0) as u64;
        cp["next_generation"].as_u64().unwrap_or(0) >= g
            && logged > cp["evaluation_lines"].as_u64().unwrap_or(u64::MAX)
    }
}

const RESUMABLE: &[&str] = &[
    "--pop",
    "10",
    "--gens",
    "5",
    "--hof",
    "4",
    "--seed",
    "11",
    "--include",
];

#[test]
fn resume_after_sigkill_equals_an_uninterrupted_run() {
    let (whole, killed) = (tmp("kill-whole"), tmp("kill-killed"));
    run_search(&whole, RESUMABLE);
    let g = generation_with_two_evaluations(&whole, 2);
    let one_worker: Vec<&str> = RESUMABLE
        .iter()
        .copied()
        .chain(["--workers", "1"])
        .collect();
    let (mut child, frozen) = spawn_frozen_at(&killed, &one_worker, mid_generation(g));
    child.kill().unwrap(); // SIGKILL
    drop(frozen);
    child.wait().unwrap();
    let before = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let cp = json(&killed.join("checkpoint.json"));
    assert_eq!(cp["status"], "running");
    assert!(before.lines().count() as u64 > cp["evaluation_lines"].as_u64().unwrap());
    let out = resume(&killed, &["--workers", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let complete: String = before
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert!(
        after.starts_with(&complete),
        "every finished evaluation is kept"
    );
    evaluations(&killed); // no formula evaluated twice
    assert_eq!(
        json(&whole.join("hall_of_fame.json")),
        json(&killed.join("hall_of_fame.json"))
    );
    assert_eq!(logbook(&whole), logbook(&killed));
    assert_eq!(evaluations(&whole), evaluations(&killed));
    assert_eq!(
        std::fs::read_to_string(whole.join("merges.jsonl")).unwrap(),
        std::fs::read_to_string(killed.join("merges.jsonl")).unwrap()
    );
    assert_eq!(json(&killed.join("checkpoint.json"))["status"], "finished");
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_resume_finishes_the_run() {
    let (whole, stopped) = (tmp("int-whole"), tmp("int-stopped"));
    run_search(&whole, RESUMABLE);
    let g = generation_with_two_evaluations(&whole, 1);
    let one_worker: Vec<&str> = RESUMABLE
        .iter()
        .copied()
        .chain(["--workers", "1"])
        .collect();
    let (child, frozen) = spawn_frozen_at(&stopped, &one_worker, mid_generation(g));
    assert!(procs::signal(child.id(), "INT"));
    drop(frozen); // delivered now
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume"), "{err}");
    let cp = json(&stopped.join("checkpoint.json"));
    assert_eq!(cp["status"], "interrupted");
    let out = resume(&stopped, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&whole.join("hall_of_fame.json")),
        json(&stopped.join("hall_of_fame.json"))
    );
    assert_eq!(logbook(&whole), logbook(&stopped));
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn resume_reports_finished_corrupt_and_foreign_directories() {
    let (a, b) = (tmp("bad-a"), tmp("bad-b"));
    let small = ["--pop", "6", "--gens", "1", "--retrain-top", "0"];
    run_search(&a, &small);
    run_search(&b, &[&small[..], &["--seed", "99"]].concat());

    // Finished: said so, status 0.
    let out = resume(&a, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("already finished"),
        "{}",
        stderr_of(&out)
    );

    // A new run never overwrites a directory.
    let out = bin().args(search_args(&a, &small)).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("already exists"));

    // Not a run directory at all.
    let empty = tmp("bad-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = resume(&empty, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("not an actforge search run directory"));

    // A foreign checkpoint (another seed's run).
    let c = tmp("bad-foreign");
    copy_dir(&a, &c);
    std::fs::copy(b.join("checkpoint.json"), c.join("checkpoint.json")).unwrap();
    let out = resume(&c, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("belongs to another run"),
        "{}",
        stderr_of(&out)
    );

    // A truncated checkpoint.
    let d = tmp("bad-truncated");
    copy_dir(&a, &d);
    let text = std::fs::read_to_string(d.join("checkpoint.json")).unwrap();
    std::fs::write(d.join("checkpoint.json"), &text[..text.len() / 2]).unwrap();
    let out = resume(&d, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("checkpoint.json: not valid JSON"),
        "{}",
        stderr_of(&out)
    );

    // A damaged log line in the middle.
    let e = tmp("bad-log");
    copy_dir(&a, &e);
    set_status(&e, "running");
    let log = std::fs::read_to_string(e.join("evaluations.jsonl")).unwrap();
    let mut ls: Vec<&str> = log.lines().collect();
    ls[1] = "{\"hash\": broken";
    std::fs::write(e.join("evaluations.jsonl"), ls.join("\n") + "\n").unwrap();
    let out = resume(&e, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("evaluations.jsonl:2"),
        "{}",
        stderr_of(&out)
    );

    // Evaluations missing that the checkpoint accounts for.
    let f = tmp("bad-short");
    copy_dir(&a, &f);
    set_status(&f, "running");
    std::fs::write(f.join("evaluations.jsonl"), ls[..1].join("\n") + "\n").unwrap();
    let out = resume(&f, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("was changed"),
        "{}",
        stderr_of(&out)
    );

    // An edited configuration.
    let g = tmp("bad-config");
    copy_dir(&a, &g);
    let mut config = json(&g.join("config.json"));
    config["settings"]["pop"] = serde_json::json!(7);
    std::fs::write(g.join("config.json"), config.to_string()).unwrap();
    let out = resume(&g, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("edited"), "{}", stderr_of(&out));

    // Settings flags cannot be given with --resume.
    let out = resume(&a, &["--pop", "4"]);
    assert_eq!(out.status.code(), Some(2));
}

fn set_status(dir: &Path, status: &str) {
    let mut cp = json(&dir.join("checkpoint.json"));
    cp["status"] = serde_json::json!(status);
    std::fs::write(dir.join("checkpoint.json"), cp.to_string()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn help_teaches_the_command() {
    let out = bin().args(["search", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--resume",
        "evaluations.jsonl",
        "merges.jsonl",
        "Examples:",
        "\"dedup_rate\"",
        "score,complexity",
        "--workers",
    ] {
        assert!(text.contains(needle), "{needle} missing from --help");
    }
    assert!(
        !text.contains("--synthetic-sleep-ms"),
        "developer flags stay hidden"
    );
}

#[test]
fn exported_kernel_of_the_best_formula() {
    let dir = tmp("export");
    let out = bin()
        .args(["search", "--evaluator", "synthetic", "--out"])
        .arg(&dir)
        .args([
            "--pop",
            "6",
            "--gens",
            "1",
            "--start-with",
            "silu(ARG0)",
            "--retrain-top",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("best kernel"), "{text}");
    // Without a terminal, progress is one line per generation on stderr.
    let err = stderr_of(&out);
    assert!(err.contains("gen 0: ") && err.contains("gen 1: "), "{err}");
    assert!(dir.join("best_kernel").join("best.cu").exists());
    assert!(dir.join("best_kernel").join("README.md").exists());
    let fin = json(&dir.join("final.json"));
    assert_eq!(fin["summary"][0]["activation"], "gelu");
    // GELU and hof-1 at each of the default final seeds.
    let seeds = actforge::search::config::RETRAIN_SEEDS;
    assert_eq!(fin["runs"].as_array().unwrap().len(), 2 * seeds);
}

#[test]
fn simple_algorithm_and_double_tournament_run() {
    let dir = tmp("simple");
    run_search(
        &dir,
        &[
            "--algorithm",
            "simple",
            "--selection",
            "double-tournament",
            "--pop",
            "8",
            "--gens",
            "2",
            "--ephemeral",
            "uniform(-1,1,2)",
            "--retrain-top",
            "0",
        ],
    );
    let book = logbook(&dir);
    assert_eq!(book.len(), 3);
    assert!(book.iter().all(|r| r["offspring"] == 8));
}

// ---- Issue 17: one process per run directory, limits, symlinks, primitives

#[test]
fn a_second_process_is_refused_while_the_first_works_and_a_killed_ones_lock_is_taken_over() {
    let dir = tmp("two-processes");
    // Frozen while its generation is being evaluated: its checkpoint
    // exists, its hall of fame does not.
    let slow = [
        "--pop",
        "2",
        "--gens",
        "0",
        "--retrain-top",
        "0",
        "--workers",
        "2",
    ];
    let (mut first, frozen) = spawn_frozen_at(&dir, &slow, |d| {
        d.join("checkpoint.json").exists() && !d.join("hall_of_fame.json").exists()
    });
    assert!(first.try_wait().unwrap().is_none());
    assert!(
        !dir.join("hall_of_fame.json").exists(),
        "stopped mid-generation"
    );
    let lock = dir.join(".actforge.lock");
    assert!(lock.exists());
    // A resume and a new search on the same directory are refused at once.
    let out = resume(&dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    let out = bin().args(search_args(&dir, &slow)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("already exists and is not empty"));
    // Nothing was logged twice by the refused processes.
    let logged = lines(&dir.join("evaluations.jsonl")).len();
    assert!(logged < 2, "{logged}");
    // kill -9 leaves its lock file behind; it does not block a resume.
    assert!(procs::signal(first.id(), "KILL"));
    drop(frozen);
    first.wait().unwrap();
    assert!(
        lock.exists(),
        "a killed process cannot remove its lock file"
    );
    let out = resume(&dir, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!lock.exists(), "released at the end");
    evaluations(&dir); // each candidate logged once
    let out = resume(&dir, &[]);
    assert!(
        stderr_of(&out).contains("already finished"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn resume_with_a_settings_flag_names_that_flag() {
    let dir = tmp("resume-flag");
    for (flag, value) in [("--pop", "3"), ("--seeds", "2"), ("--device", "cpu")] {
        let out = resume(&dir, &[flag, value]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr_of(&out);
        assert!(err.contains(&format!("'{flag} ")), "{flag}: {err}");
        assert!(!err.contains("--task"), "{flag}: {err}");
    }
}

#[test]
fn sizes_past_their_limits_are_usage_errors_before_a_run_directory_exists() {
    let huge = u64::MAX.to_string();
    for (flag, value, limit) in [
        ("--pop", huge.as_str(), "limit of 100000"),
        ("--seeds", huge.as_str(), "limit of 1000"),
        ("--max-seeds", huge.as_str(), "limit of 1000"),
        ("--gens", huge.as_str(), "limit of 100000"),
        ("--batch-size", "100000", "limit of 1024"),
        ("--steps", huge.as_str(), "limit of 1000000"),
        ("--synthetic-sleep-ms", "1000000000000", "limit of 60000"),
        ("--tournament-size", huge.as_str(), "limit of 100000"),
        ("--workers", "100000", "limit of 1024"),
    ] {
        let dir = tmp("limits");
        // --seeds (fixed seeds per candidate) comes with --no-racing.
        let racing: &[&str] = if flag == "--seeds" {
            &["--no-racing"]
        } else {
            &[]
        };
        let out = bin()
            .args(search_args(&dir, &[&[flag, value], racing].concat()))
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(flag) && err.contains(limit), "{flag}: {err}");
        assert!(!dir.exists(), "{flag}: a run directory was made");
    }
}

/// A run made in this process and left before its first generation (as a
/// killed search leaves it): `config.json` and a checkpoint.
fn unstarted_run(dir: &Path, settings: Settings) {
    drop(Search::create(dir, settings, &["test".to_string()]).unwrap());
}

/// `config.json` of `dir` with `edit` applied to its settings and the
/// settings hash recomputed (the hash is not a signature: anyone can).
fn forge(dir: &Path, edit: impl Fn(&mut Value)) {
    let mut config = json(&dir.join("config.json"));
    edit(&mut config["settings"]);
    let hash = actforge::gp::syntactic_hash(&config["settings"].to_string());
    config["settings_hash"] = serde_json::json!(format!("{hash:016x}"));
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn a_forged_config_is_held_to_the_flags_limits() {
    for (key, value) in [
        ("seeds", serde_json::json!(1_000_000_000_000u64)),
        ("pop", serde_json::json!(u64::MAX)),
    ] {
        let dir = tmp("forged");
        unstarted_run(&dir, synthetic(&[], 4, 1));
        forge(&dir, |s| s[key] = value.clone());
        let out = resume(&dir, &[]);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(
            err.contains("config.json") && err.contains("above the limit"),
            "{key}: {err}"
        );
        // eval-candidates reads the same file and refuses it the same way.
        let batch = dir.join("batch.jsonl");
        std::fs::write(&batch, "{\"formula\": \"sin(ARG0)\"}\n").unwrap();
        let out = bin()
            .args(["eval-candidates", "--quiet", "--run"])
            .arg(&dir)
            .arg("--batch")
            .arg(&batch)
            .arg("--out")
            .arg(dir.join("out.jsonl"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("above the limit"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn an_edited_copy_of_the_primitive_set_is_refused() {
    let dir = tmp("primitives-edit");
    let defs = tmp("primitives-defs.act");
    std::fs::write(&defs, "wobble(a) = sin(a) + a\nsq(a) = a * a\n").unwrap();
    let settings = Settings {
        primitives: actforge::gp::sets::SetSpec::File(defs.clone()),
        ..synthetic(&[], 4, 1)
    };
    if let Err(e) = settings.primitive_set(None) {
        panic!("the test's primitives file: {e}");
    }
    unstarted_run(&dir, settings);
    let config = json(&dir.join("config.json"));
    assert!(config["primitives_checksum"].is_string());
    let copy = dir.join("primitives.act");
    let text = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(&copy, text.replace("sin", "cos")).unwrap();
    let out = resume(&dir, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("primitives.act") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn symbolic_links_planted_in_a_run_directory_are_never_written_through() {
    let dir = tmp("links");
    unstarted_run(&dir, synthetic(&[], 4, 1));
    let victim = tmp("links-victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // A worker log: appended to by the process executor.
    std::fs::create_dir_all(dir.join("workers")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("workers/worker-0.log")).unwrap();
    let out = resume(&dir, &["--executor", "process", "--workers", "1"]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("worker-0.log") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // The Ray driver's copy: replaced, not followed (the driver then fails
    // to import ray here, or finds it; either way the victim stays).
    std::fs::remove_file(dir.join("workers/worker-0.log")).unwrap();
    std::fs::create_dir_all(dir.join("executor")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("executor/ray_driver.py")).unwrap();
    let out = resume(
        &dir,
        &["--executor", "ray", "--ray-python", "/nonexistent/python"],
    );
    assert!(!out.status.success(), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        !std::fs::symlink_metadata(dir.join("executor/ray_driver.py"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // The evaluations log: refused.
    let log = dir.join("evaluations.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let out = resume(&dir, &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("evaluations.jsonl") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// A worker process that cannot start is a failure, not a usage error:
/// exit status 1 (status 2 is for a request or setting that makes no
/// sense, and every flag here is sound).
#[test]
fn a_worker_that_cannot_start_exits_with_status_1() {
    let dir = tmp("no-start-status");
    unstarted_run(&dir, synthetic(&[], 4, 1));
    // The worker's log is a planted link: it is never opened, so the
    // worker does not start.
    std::fs::create_dir_all(dir.join("workers")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.log"), dir.join("workers/worker-0.log")).unwrap();
    let out = resume(&dir, &["--executor", "process", "--workers", "1"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("worker 0 (the run's device) did not start"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!dir.join("nowhere.log").exists());
}

#[test]
fn eval_timeout_needs_killable_workers_and_scores_hung_evaluations_as_timeouts() {
    let dir = tmp("timeout-thread");
    let out = bin()
        .args(search_args(&dir, &["--eval-timeout", "5"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--executor process"),
        "{}",
        stderr_of(&out)
    );
    assert!(!dir.exists());
    // Every job sleeps at least 60 s, far past a 1 s timeout, whatever the
    // machine's speed: each is killed, retried once, and scored a timeout.
    let dir = tmp("timeout-process");
    let out = bin()
        .args(search_args(
            &dir,
            &[
                "--pop",
                "2",
                "--gens",
                "0",
                "--retrain-top",
                "0",
                "--start-with",
                "gelu(ARG0)",
                "--synthetic-sleep-ms",
                "60000",
                "--executor",
                "process",
                "--workers",
                "2",
                "--eval-timeout",
                "1",
            ],
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let logged: Vec<Value> = lines(&dir.join("evaluations.jsonl"))
        .into_iter()
        .filter(|r| r["screened"].is_null())
        .collect();
    assert!(!logged.is_empty(), "GELU is evaluated, not screened");
    for r in &logged {
        let why = r["failure"].as_str().unwrap_or_default();
        assert!(r["fitness"].is_null(), "{r}");
        assert!(
            why.contains("timed out twice") && why.contains("--eval-timeout"),
            "{why}"
        );
    }
    let log = std::fs::read_to_string(dir.join("workers/worker-0.log")).unwrap();
    assert!(log.contains("(try 1)") && log.contains("(try 2)"), "{log}");
}

/// The final verdict is held out: the test split, and seeds after the
/// search's training seeds, none of them in evaluations.jsonl, whose lines
/// (and the hall of fame's entries) record their seeds.
#[test]
fn the_final_verdict_uses_the_test_split_and_seeds_the_search_never_used() {
    let dir = tmp("held-out");
    run_search(
        &dir,
        &[
            "--pop",
            "6",
            "--gens",
            "1",
            "--seed",
            "7",
            "--no-racing",
            "--seeds",
            "2",
            "--retrain-seeds",
            "4",
        ],
    );
    let fin = json(&dir.join("final.json"));
    assert_eq!(fin["split"], "test");
    assert_eq!(fin["seeds"], serde_json::json!([9, 10, 11, 12]));
    let mut searched = std::collections::BTreeSet::new();
    for e in lines(&dir.join("evaluations.jsonl")) {
        let seeds = e["seeds"].as_array().unwrap().clone();
        if e["screened"].is_null() {
            assert_eq!(seeds, vec![serde_json::json!(7), serde_json::json!(8)]);
        }
        searched.extend(seeds.iter().map(|s| s.as_u64().unwrap()));
    }
    assert!(!searched.is_empty());
    for s in fin["seeds"].as_array().unwrap() {
        assert!(!searched.contains(&s.as_u64().unwrap()), "seed {s}");
    }
    for e in json(&dir.join("hall_of_fame.json")).as_array().unwrap() {
        assert_eq!(e["seeds"], serde_json::json!([7, 8]), "{e}");
    }
    assert!(fin["mde"].as_f64().unwrap() > 0.0);
}

/// Raced evaluations by (hash, seeds), without time and worker; panics if
/// a candidate-seed was logged twice.
const RACED: &[&str] = &[
    "--pop",
    "10",
    "--gens",
    "4",
    "--hof",
    "4",
    "--seed",
    "7",
    "--include",
    "--max-seeds",
    "4",
    "--retrain-seeds",
    "3",
];

#[test]
fn racing_logs_one_seed_a_line_and_gives_the_same_run_with_1_and_3_workers() {
    let (a, b) = (tmp("race-1"), tmp("race-3"));
    let sleepy: Vec<&str> = RACED
        .iter()
        .copied()
        .chain(["--synthetic-sleep-ms", "2"])
        .collect();
    run_search(&a, &[&sleepy[..], &["--workers", "1"]].concat());
    run_search(&b, &[&sleepy[..], &["--workers", "3"]].concat());
    let hof = json(&a.join("hall_of_fame.json"));
    assert_eq!(hof, json(&b.join("hall_of_fame.json")));
    assert_eq!(logbook(&a), logbook(&b));
    assert_eq!(evaluations(&a), evaluations(&b));
    assert_eq!(json(&a.join("pareto.json")), json(&b.join("pareto.json")));
    // Every trained line is one candidate at one seed, from seed 7 on; a
    // screened one has none.
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    for r in lines(&a.join("evaluations.jsonl")) {
        let seeds: Vec<u64> = serde_json::from_value(r["seeds"].clone()).unwrap();
        assert!(seeds.len() <= 1, "{r}");
        if r["screened"].is_null() {
            assert_eq!(seeds.len(), 1, "{r}");
            assert!((7..11).contains(&seeds[0]), "{r}");
            per_key
                .entry(r["hash"].as_str().unwrap().into())
                .or_default()
                .push(seeds[0]);
        }
    }
    // Each candidate's seeds are the first n of 7, 8, 9, 10; the race sent
    // some to 4 seeds and stopped others earlier; the baseline has all 4.
    let counts: Vec<usize> = per_key
        .values_mut()
        .map(|s| {
            s.sort_unstable();
            assert_eq!(*s, (7..7 + s.len() as u64).collect::<Vec<_>>());
            s.len()
        })
        .collect();
    assert!(counts.contains(&4) && counts.contains(&1), "{counts:?}");
    // The hall of fame shows each entry's seeds; the best has all four.
    let seeds: Vec<usize> = hof
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seeds"].as_array().unwrap().len())
        .collect();
    assert_eq!(seeds[0], 4, "{hof}");
    // The final verdict's seeds follow every seed a candidate could earn.
    let fin = json(&a.join("final.json"));
    assert_eq!(fin["seeds"], serde_json::json!([11, 12, 13]), "{fin}");
    // Selection reads the mean paired difference from GELU at the same
    // seeds: recomputed here from the logged per-seed fitnesses.
    let gelu = "5c6e65c073e2e118"; // canonical hash of gelu(ARG0)
    let fitness_at = |hash: &str, seed: u64| -> f64 {
        lines(&a.join("evaluations.jsonl"))
            .into_iter()
            .find(|r| r["hash"] == hash && r["seeds"] == serde_json::json!([seed]))
            .unwrap()["fitness"]
            .as_f64()
            .unwrap()
    };
    for file in ["hall_of_fame.json", "pareto.json"] {
        for e in json(&a.join(file)).as_array().unwrap() {
            let h = e["hash"].as_str().unwrap();
            let seeds: Vec<u64> = serde_json::from_value(e["seeds"].clone()).unwrap();
            let sum: f64 = seeds
                .iter()
                .map(|&s| fitness_at(h, s) - fitness_at(gelu, s))
                .sum();
            let paired = sum / seeds.len() as f64;
            assert_eq!(e["objectives"][0].as_f64(), Some(paired), "{file}: {e}");
        }
    }
    // config.json lists every seed a candidate could earn.
    let config = json(&a.join("config.json"));
    assert_eq!(config["training_seeds"], serde_json::json!([7, 8, 9, 10]));
}

#[test]
fn racing_resumes_after_sigkill_as_an_uninterrupted_run() {
    let (whole, killed) = (tmp("race-whole"), tmp("race-killed"));
    run_search(&whole, RACED);
    let g = generation_with_two_evaluations(&whole, 2);
    let one_worker: Vec<&str> = RACED.iter().copied().chain(["--workers", "1"]).collect();
    let (mut child, frozen) = spawn_frozen_at(&killed, &one_worker, mid_generation(g));
    child.kill().unwrap(); // SIGKILL
    drop(frozen);
    child.wait().unwrap();
    let before = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let cp = json(&killed.join("checkpoint.json"));
    assert!(before.lines().count() as u64 > cp["evaluation_lines"].as_u64().unwrap());
    let out = resume(&killed, &["--workers", "3"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let after = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let complete: String = before
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert!(
        after.starts_with(&complete),
        "every finished evaluation is kept"
    );
    assert_eq!(
        json(&whole.join("hall_of_fame.json")),
        json(&killed.join("hall_of_fame.json"))
    );
    assert_eq!(logbook(&whole), logbook(&killed));
    // Nothing trained twice (evaluations panics on a repeat).
    assert_eq!(evaluations(&whole), evaluations(&killed));
}

#[test]
fn raced_lines_are_the_same_from_worker_processes_and_eval_candidates() {
    let (threads, procs_dir) = (tmp("race-threads"), tmp("race-procs"));
    run_search(&threads, &[RACED, &["--workers", "1"]].concat());
    run_search(
        &procs_dir,
        &[RACED, &["--workers", "2", "--executor", "process"]].concat(),
    );
    assert_eq!(evaluations(&threads), evaluations(&procs_dir));
    assert_eq!(
        json(&threads.join("hall_of_fame.json")),
        json(&procs_dir.join("hall_of_fame.json"))
    );
    // A candidate-seed of the race, evaluated again by eval-candidates
    // from its hash and seed: the logged fitness, bit for bit.
    let raced: Vec<Value> = lines(&threads.join("evaluations.jsonl"))
        .into_iter()
        .filter(|e| e["fitness"].is_number() && e["seeds"][0].as_u64() > Some(7))
        .take(3)
        .collect();
    assert!(!raced.is_empty(), "the race trained past the first seed");
    let batch = threads.join("batch.jsonl");
    let text: String = raced
        .iter()
        .map(|e| {
            format!(
                "{}\n",
                serde_json::json!({"hash": e["hash"], "seeds": e["seeds"]})
            )
        })
        .collect();
    std::fs::write(&batch, text).unwrap();
    let out = threads.join("results.jsonl");
    let o = bin()
        .args(["eval-candidates", "--quiet", "--json", "--run"])
        .arg(&threads)
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let results = lines(&out);
    assert_eq!(results.len(), raced.len());
    for (r, e) in results.iter().zip(&raced) {
        assert_eq!((&r["hash"], &r["seeds"]), (&e["hash"], &e["seeds"]));
        assert_eq!(
            r["fitness"].as_f64().unwrap().to_bits(),
            e["fitness"].as_f64().unwrap().to_bits()
        );
    }
}

/// [`RACED`] with lockstep populations of up to `size`.
fn raced_lockstep_of(size: &str, extra: &[&str]) -> Vec<String> {
    RACED
        .iter()
        .chain(&["--lockstep", "--lockstep-size", size])
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// [`RACED`] with lockstep populations of up to 3.
fn raced_lockstep(extra: &[&str]) -> Vec<String> {
    raced_lockstep_of("3", extra)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The first generation from `first` on in which the uninterrupted run
/// `whole` logged at least `n` lines.
fn generation_with(whole: &Path, first: u64, n: usize) -> u64 {
    let mut per_generation: HashMap<u64, usize> = HashMap::new();
    for r in lines(&whole.join("evaluations.jsonl")) {
        *per_generation
            .entry(r["generation"].as_u64().unwrap())
            .or_default() += 1;
    }
    (first..)
        .take(100)
        .find(|g| per_generation.get(g).is_some_and(|&k| k >= n))
        .expect("a generation with enough evaluations")
}

/// The synthetic evaluator emulates a population (each member's fitness
/// moves in its last bits with its companions, see `synthetic.rs`), so
/// these runs show the groups themselves: cut from each batch by
/// `--lockstep-size` alone, never by the worker count.
#[test]
fn lockstep_groups_depend_on_the_batch_not_the_workers_and_keep_the_hall_of_fame() {
    let (a, b, solo) = (tmp("lock-1"), tmp("lock-3"), tmp("lock-solo"));
    let sleepy = ["--synthetic-sleep-ms", "2"];
    run_search(
        &a,
        &strs(&raced_lockstep(
            &[&sleepy[..], &["--workers", "1"]].concat(),
        )),
    );
    run_search(
        &b,
        &strs(&raced_lockstep(
            &[&sleepy[..], &["--workers", "3"]].concat(),
        )),
    );
    run_search(&solo, &[RACED, &sleepy[..], &["--workers", "2"]].concat());
    assert_eq!(evaluations(&a), evaluations(&b));
    let hof = json(&a.join("hall_of_fame.json"));
    assert_eq!(hof, json(&b.join("hall_of_fame.json")));
    assert_eq!(logbook(&a), logbook(&b));
    // Populations of 2 and 3 trained, never more than 3; a lone job of a
    // batch trains one by one.
    let sizes: HashSet<u64> = lines(&a.join("evaluations.jsonl"))
        .iter()
        .filter_map(|r| r["metrics"]["population"].as_u64())
        .collect();
    assert!(
        sizes.contains(&3) && sizes.iter().all(|&p| (2..=3).contains(&p)),
        "{sizes:?}"
    );
    let config = json(&a.join("config.json"));
    assert_eq!(
        config["settings"]["lockstep"],
        serde_json::json!({"size": 3})
    );
    assert!(json(&solo.join("config.json"))["settings"]
        .get("lockstep")
        .is_none());
    // The same candidate-seeds as one by one, each fitness within the
    // emulated populations' 1e-9, and the same hall of fame.
    let (lock, one) = (evaluations(&a), evaluations(&solo));
    assert_eq!(
        lock.keys().collect::<HashSet<_>>(),
        one.keys().collect::<HashSet<_>>()
    );
    for (k, r) in &lock {
        match (r["fitness"].as_f64(), one[k]["fitness"].as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-9, "{k:?}: {x} vs {y}"),
            (x, y) => assert_eq!(x, y, "{k:?}"),
        }
    }
    let entries = |h: &Value| -> Vec<(Value, Value)> {
        h.as_array()
            .unwrap()
            .iter()
            .map(|e| (e["hash"].clone(), e["seeds"].clone()))
            .collect()
    };
    assert_eq!(
        entries(&hof),
        entries(&json(&solo.join("hall_of_fame.json")))
    );
}

#[test]
fn lockstep_resumes_after_sigkill_as_an_uninterrupted_run() {
    let (whole, killed) = (tmp("lock-whole"), tmp("lock-killed"));
    let args = raced_lockstep_of("2", &[]);
    run_search(&whole, &strs(&args));
    // Groups of at most 2: a generation of 4 lines (after the first) has
    // two groups or more, so one is logged while another trains.
    let g = generation_with(&whole, 1, 4);
    let one_worker = raced_lockstep_of("2", &["--workers", "1"]);
    let (mut child, frozen) = spawn_frozen_at(&killed, &strs(&one_worker), mid_generation(g));
    child.kill().unwrap(); // SIGKILL
    drop(frozen);
    child.wait().unwrap();
    let before = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let cp = json(&killed.join("checkpoint.json"));
    assert!(before.lines().count() as u64 > cp["evaluation_lines"].as_u64().unwrap());
    let out = resume(&killed, &["--workers", "3"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let after = std::fs::read_to_string(killed.join("evaluations.jsonl")).unwrap();
    let complete: String = before
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert!(after.starts_with(&complete), "every logged member is kept");
    // Nothing trained twice, and what was left trained in the groups of
    // the uninterrupted run: the same bits.
    assert_eq!(evaluations(&whole), evaluations(&killed));
    assert_eq!(
        json(&whole.join("hall_of_fame.json")),
        json(&killed.join("hall_of_fame.json"))
    );
    assert_eq!(logbook(&whole), logbook(&killed));
    // --resume keeps the run's lockstep setting; changing it is refused.
    let e = resume(&killed, &["--no-lockstep"]);
    assert_eq!(e.status.code(), Some(2), "{}", stderr_of(&e));
    assert!(stderr_of(&e).contains("--no-lockstep"), "{}", stderr_of(&e));
}

#[test]
fn lockstep_lines_are_the_same_from_worker_processes_and_eval_candidates() {
    let (threads, procs_dir) = (tmp("lock-threads"), tmp("lock-procs"));
    run_search(&threads, &strs(&raced_lockstep(&["--workers", "1"])));
    run_search(
        &procs_dir,
        &strs(&raced_lockstep(&[
            "--workers",
            "2",
            "--executor",
            "process",
        ])),
    );
    assert_eq!(evaluations(&threads), evaluations(&procs_dir));
    assert_eq!(
        json(&threads.join("hall_of_fame.json")),
        json(&procs_dir.join("hall_of_fame.json"))
    );
    // One population of the search (with one worker its members are
    // logged one after the other), evaluated again by eval-candidates
    // --lockstep as a batch of its members: the same lines, bit for bit.
    let logged = lines(&threads.join("evaluations.jsonl"));
    let start = logged
        .iter()
        .position(|e| e["metrics"]["population"] == 3)
        .expect("a population of 3");
    let group = &logged[start..start + 3];
    let batch = threads.join("batch.jsonl");
    let text: String = group
        .iter()
        .map(|e| {
            format!(
                "{}\n",
                serde_json::json!({"hash": e["hash"], "seeds": e["seeds"]})
            )
        })
        .collect();
    std::fs::write(&batch, text).unwrap();
    for (out, extra) in [
        ("results.jsonl", &[][..]),
        ("results-timeout.jsonl", &["--eval-timeout", "600"][..]),
    ] {
        let out = threads.join(out);
        let o = bin()
            .args(["eval-candidates", "--quiet", "--lockstep", "--run"])
            .arg(&threads)
            .arg("--batch")
            .arg(&batch)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr_of(&o));
        let results = lines(&out);
        assert_eq!(results.len(), 3);
        for (r, e) in results.iter().zip(group) {
            assert_eq!((&r["hash"], &r["seeds"]), (&e["hash"], &e["seeds"]));
            assert_eq!(r["metrics"], e["metrics"]);
            assert_eq!(
                r["fitness"].as_f64().unwrap().to_bits(),
                e["fitness"].as_f64().unwrap().to_bits()
            );
        }
    }
    // Without --lockstep each is its one-by-one value (no population).
    let out = threads.join("results-solo.jsonl");
    let o = bin()
        .args(["eval-candidates", "--quiet", "--run"])
        .arg(&threads)
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    for r in lines(&out) {
        assert!(r["metrics"].get("population").is_none(), "{r}");
    }
}

/// The library's front door: a `Request` resolved into settings, a
/// `Session` that assembles the run (evaluators, executor, workers), run
/// with no terminal. It reaches the hall of fame the engine reaches when
/// driven by hand with the same settings, and a resumed session of the
/// finished run says it has finished.
#[test]
fn a_session_from_a_request_reaches_the_engines_hall_of_fame() {
    use actforge::search::request::Request;
    use actforge::search::session::{Resumed, Scale, Session};
    let request = Request {
        device: Some(actforge::device::Device::Cpu),
        evaluator: EvaluatorKind::Synthetic { sleep_ms: 0 },
        pop: 6,
        gens: 2,
        export: false,
        retrain_top: 0,
        seed: 5,
        ..Request::default()
    };
    let settings = request.resolve().unwrap();
    let by_hand = tmp("session-by-hand");
    let (_, _) = library_run(&by_hand, settings.clone(), 2);
    let dir = tmp("session");
    let scale = Scale {
        workers: Some(2),
        ..Scale::threads(bin().get_program().into())
    };
    let mut session =
        Session::create(settings, Some(&dir), &["test".into()], scale.clone(), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    match session.run(&mut Silent, stop).unwrap() {
        Outcome::Finished(_) => {}
        Outcome::Interrupted { .. } => panic!("not interrupted"),
    }
    let hof = |d: &Path| json(&d.join("hall_of_fame.json"));
    assert!(hof(&dir).as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(hof(&dir), hof(&by_hand));
    drop(session); // its lock on the run directory
    assert!(matches!(
        Session::resume(&dir, scale, None).unwrap(),
        Resumed::Finished(_)
    ));
}
