//! Scaling the search out (issue 13): `actforge eval-candidates` in a fresh
//! process gives the search's fitness bit for bit and answers bad batch
//! lines one by one; worker processes reach the same hall of fame as
//! threads, and a killed worker loses only its candidate (retried once,
//! then scored as a failure); `--devices` needs CUDA; the Ray executor on a
//! local Ray instance reaches the same hall of fame, scores a task that
//! fails twice, and a lost cluster stops the search so that `--resume`
//! continues it.
//!
//! The Ray tests install `ray==2.60.0` into a virtual environment in this
//! test's temporary folder; when it cannot be installed they print why and
//! pass, unless `ACTFORGE_REQUIRE_RAY=1` (CI), where they fail.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actforge::ir::Library;
use actforge::search::candidate::Candidate;
use actforge::search::exec::process::{ProcessWorkers, WorkerSetup};
use actforge::search::exec::ray::{RayExecutor, RayOptions, RaySetup, RAY_VERSION};
use actforge::search::{Executor, Job, JobResult};
use common::harness::{self, bin, json, lines, root, tmp, without_times};
use common::procs;
use serde_json::Value;

/// The shared micro search (`common::harness::micro`) without the final
/// retrain, with `extra`.
fn micro(extra: &[&str]) -> Vec<String> {
    harness::micro(&[&["--retrain-top", "0"], extra].concat())
}

fn search_output(dir: &Path, extra: &[&str]) -> Output {
    bin()
        .args(micro(extra))
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap()
}

fn search(dir: &Path, extra: &[&str]) -> Output {
    let out = search_output(dir, extra);
    assert!(
        out.status.success(),
        "search {extra:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (hash, fitness bits or the failure) of every evaluation, sorted.
fn fitnesses(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = lines(&dir.join("evaluations.jsonl"))
        .into_iter()
        .map(|e| {
            let f = match e["fitness"].as_f64() {
                Some(f) => format!("{:016x}", f.to_bits()),
                None => e["failure"].as_str().unwrap_or("?").to_string(),
            };
            (e["hash"].as_str().unwrap().to_string(), f)
        })
        .collect();
    v.sort();
    v
}

fn same_search(a: &Path, b: &Path) {
    assert_eq!(
        without_times(json(&a.join("hall_of_fame.json"))),
        without_times(json(&b.join("hall_of_fame.json"))),
        "{} vs {}",
        a.display(),
        b.display()
    );
    assert_eq!(fitnesses(a), fitnesses(b));
}

/// The reference: the micro search on one thread, made once.
fn reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("reference");
        search(&d, &["--workers", "1"]);
        d
    })
}

fn eval_candidates(run: &Path, batch: &Path, out: &Path) -> Output {
    bin()
        .args(["eval-candidates", "--quiet", "--json", "--run"])
        .arg(run)
        .arg("--batch")
        .arg(batch)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn eval_candidates_gives_the_search_fitness_bit_for_bit_and_reruns_are_idempotent() {
    let run = reference();
    let trained: Vec<Value> = lines(&run.join("evaluations.jsonl"))
        .into_iter()
        .filter(|e| e["fitness"].is_number())
        .collect();
    assert!(trained.len() >= 2, "the reference trained candidates");
    let dir = tmp("bit-exact");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.jsonl");
    // By formula, hash and seed (the run races seeds: a candidate has a
    // line per seed), and by hash alone (the run's recorded formula at its
    // first training seed, which the first line, GELU's, trained with).
    let mut text = String::new();
    for (i, e) in trained.iter().enumerate() {
        let line = if i == 0 {
            let first = json(&run.join("config.json"))["settings"]["seed"].clone();
            assert_eq!(e["seeds"], serde_json::json!([first]));
            serde_json::json!({"hash": e["hash"]})
        } else {
            serde_json::json!({"hash": e["hash"], "formula": e["formula"], "seeds": e["seeds"]})
        };
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(&batch, text).unwrap();
    let out = dir.join("results.jsonl");
    let o = eval_candidates(run, &batch, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["evaluated"], trained.len());
    let results = lines(&out);
    assert_eq!(results.len(), trained.len());
    for (r, e) in results.iter().zip(&trained) {
        assert_eq!(r["hash"], e["hash"]);
        assert_eq!(r["formula"], e["formula"]);
        assert_eq!(
            r["fitness"].as_f64().unwrap().to_bits(),
            e["fitness"].as_f64().unwrap().to_bits(),
            "{}",
            e["formula"]
        );
        assert_eq!(
            without_times(r["metrics"].clone()),
            without_times(e["metrics"].clone())
        );
    }
    // A rerun keeps every result and evaluates nothing.
    let before = std::fs::read(&out).unwrap();
    let o = eval_candidates(run, &batch, &out);
    assert!(o.status.success());
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["evaluated"], 0);
    assert_eq!(summary["reused"], trained.len());
    assert_eq!(std::fs::read(&out).unwrap(), before);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
}

#[test]
fn bad_batch_lines_get_their_own_errors_and_good_lines_are_evaluated() {
    let run = reference();
    let dir = tmp("bad-batch");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.jsonl");
    std::fs::write(
        &batch,
        "# a comment\n\
         not json\n\
         {\"formula\": \"safe_mul(ARG0, sin(ARG0)\"}\n\
         {\"formula\": \"sin(ARG0)\", \"recipe\": \"0000000000000000\"}\n\
         {\"hash\": \"0000000000000001\"}\n\
         {\"formula\": \"safe_mul(ARG0, sin(ARG0))\", \"seeds\": [3]}\n",
    )
    .unwrap();
    let out = dir.join("results.jsonl");
    let o = eval_candidates(run, &batch, &out);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let results = lines(&out);
    let good: Vec<&Value> = results.iter().filter(|r| r["error"].is_null()).collect();
    assert_eq!(good.len(), 1, "{results:?}");
    assert!(good[0]["fitness"].as_f64().unwrap().is_finite());
    let errors: Vec<(u64, String)> = results
        .iter()
        .filter_map(|r| Some((r["line"].as_u64()?, r["error"].as_str()?.to_string())))
        .collect();
    let expect = [
        (2, "not a JSON object"),
        (3, "does not parse"),
        (4, "is for recipe 0000000000000000"),
        (5, "has not recorded a formula with hash 0000000000000001"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:?}");
    for ((line, msg), (want_line, needle)) in errors.iter().zip(expect) {
        assert_eq!(*line, want_line);
        assert!(msg.contains(needle), "line {line}: {msg}");
    }
    // The messages are on stderr too, with file and line.
    let o = bin()
        .args(["eval-candidates", "--run"])
        .arg(run)
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(dir.join("again.jsonl"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("batch.jsonl:3: the formula does not parse"),
        "{err}"
    );

    // An unknown run directory is one clear error, and writes nothing.
    let nowhere = dir.join("no-such-run");
    let o = eval_candidates(&nowhere, &batch, &dir.join("none.jsonl"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains("not an actforge search run directory"),
        "{err}"
    );
    assert!(!dir.join("none.jsonl").exists());
}

#[test]
fn serve_mode_answers_line_by_line_after_a_ready_line() {
    let run = reference();
    let mut child = bin()
        .args([
            "eval-candidates",
            "--quiet",
            "--batch",
            "-",
            "--out",
            "-",
            "--run",
        ])
        .arg(run)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"formula\": \"sin(ARG0)\"}\n{\"formula\": 1}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3, "{text}");
    assert_eq!(got[0]["ready"], true);
    assert!(got[1]["fitness"].is_number(), "{}", got[1]);
    assert_eq!(got[2]["line"], 2);
}

#[test]
fn worker_processes_reach_the_hall_of_fame_of_one_thread() {
    let dir = tmp("process-3");
    search(&dir, &["--executor", "process", "--workers", "3"]);
    same_search(reference(), &dir);
    for i in 0..3 {
        let log =
            std::fs::read_to_string(dir.join("workers").join(format!("worker-{i}.log"))).unwrap();
        assert!(log.starts_with(&format!("== worker {i}: pid ")), "{log}");
    }
}

/// The pid of worker `i`'s current process (its log's newest header)
/// when its log ends with an `evaluating …` line: it holds a candidate
/// whose result it has not yet described or sent.
fn evaluating_pid(log: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(log).ok()?;
    if !text.lines().last()?.starts_with("evaluating ") {
        return None;
    }
    let header = text.lines().rev().find(|l| l.starts_with("== worker"))?;
    header.split("pid ").nth(1)?.split(',').next()?.parse().ok()
}

#[test]
fn a_killed_worker_process_loses_only_its_candidate() {
    let longer = ["--steps", "40", "--pop", "6", "--workers"];
    let reference = tmp("kill-reference");
    search(&reference, &[&longer[..], &["1"]].concat());
    let dir = tmp("kill");
    let mut child = bin()
        .args(micro(
            &[&longer[..], &["2", "--executor", "process"]].concat(),
        ))
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.join("workers").join("worker-0.log");
    // Kill worker 0 at a moment checked on the frozen worker: its log ends
    // with `evaluating …`, so it holds a candidate whose result it has not
    // sent (it describes a result in its log before sending it).
    loop {
        if let Some(pid) = evaluating_pid(&log) {
            let _frozen = procs::Frozen::new(&[pid]);
            if evaluating_pid(&log) == Some(pid) {
                assert!(procs::signal(pid, "KILL"));
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the search ended before worker 0 was seen evaluating"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("lost candidate") && text.contains("(try 1)") && text.contains("signal 9"),
        "{text}"
    );
    assert_eq!(
        text.matches("== worker 0: pid").count(),
        2,
        "restarted once: {text}"
    );
    // The lost candidate was evaluated again: nothing differs.
    same_search(&reference, &dir);
}

/// A stand-in for `actforge eval-candidates --batch - --out -` that dies
/// on candidates whose formula contains `tanh` (the marked candidate of
/// [`jobs`]) and scores others 1.5.
const FAKE_WORKER: &str = r#"#!/bin/sh
echo start >> "$(dirname "$0")/starts"
echo '{"ready": true}'
while IFS= read -r line; do
  case "$line" in *tanh*) kill -9 $$ ;; esac
  hash=$(printf '%s' "$line" | sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/')
  printf '{"hash":"%s","seeds":[0],"recipe":"0000000000000000","fitness":1.5,"failure":null,"metrics":{},"seconds":0,"worker":0}\n' "$hash"
done
"#;

/// Write an executable script. It is written by a child `sh`, never through
/// a file descriptor of this process: tests run on several threads, and a
/// child another thread forks while this process holds the script open for
/// writing inherits that descriptor until it execs, so running the script
/// then fails with ETXTBSY ("Text file busy"; seen once in a full run).
fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let mut sh = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(sh.wait().unwrap().success(), "writing {}", path.display());
    assert!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0,
        "{} is not executable",
        path.display()
    );
    path
}

fn jobs() -> Vec<Job> {
    ["sin(x)", "tanh(x)", "cos(x)"]
        .iter()
        .enumerate()
        .map(|(i, f)| job(0x1000 + i as u64, f))
        .collect()
}

/// A job for `formula` (seed 0) under `key`.
fn job(key: u64, formula: &str) -> Job {
    Job {
        candidate: Candidate::parse(key, formula, Library::standard()).unwrap(),
        seeds: vec![0],
    }
}

fn run_all(exec: &mut dyn Executor) -> Vec<JobResult> {
    let mut got = Vec::new();
    exec.run(jobs(), &mut |r| {
        got.push(r);
        Ok(())
    })
    .unwrap();
    got.sort_by_key(|r| r.key);
    got
}

#[test]
fn a_worker_that_dies_twice_scores_its_candidate_as_a_failure() {
    let dir = tmp("fake-worker");
    let program = script(&dir, "fake-actforge", FAKE_WORKER);
    let mut exec = ProcessWorkers::new(
        WorkerSetup::new(program, dir.clone(), 0, vec![None]),
        Arc::new(AtomicBool::new(false)),
    );
    exec.start().unwrap();
    let got = run_all(&mut exec);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].fitness, Some(1.5));
    assert_eq!(got[2].fitness, Some(1.5));
    let why = got[1].failure.clone().unwrap();
    assert_eq!(got[1].fitness, None);
    assert!(why.starts_with("worker died twice"), "{why}");
    assert!(why.contains("signal 9"), "{why}");
    // Started, died, restarted, died, restarted for the last candidate.
    let starts = std::fs::read_to_string(dir.join("starts")).unwrap();
    assert_eq!(starts.lines().count(), 3, "{starts}");
}

#[test]
fn a_worker_that_cannot_start_is_a_clear_error() {
    let dir = tmp("no-start");
    let program = script(
        &dir,
        "broken",
        "#!/bin/sh\necho 'error: no GPU here' >&2\nexit 1\n",
    );
    let mut exec = ProcessWorkers::new(
        WorkerSetup::new(program, dir.clone(), 0, vec![Some("cuda:7".into())]),
        Arc::new(AtomicBool::new(false)),
    );
    let e = exec.start().unwrap_err().to_string();
    assert!(e.contains("worker 0 (cuda:7) did not start"), "{e}");
    assert!(e.contains("exited with status 1"), "{e}");
    assert!(e.contains("no GPU here"), "{e}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn devices_need_a_cuda_build_and_say_so_before_the_run_directory_exists() {
    let dir = tmp("devices");
    let out = bin()
        .args(micro(&[]))
        .args(["--devices", "0,1", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CUDA device 0"), "{err}");
    assert!(err.contains("--features cuda"), "{err}");
    assert!(!dir.exists());
    let out = bin()
        .args(micro(&[]))
        .args(["--devices", "0,0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---- Ray ------------------------------------------------------------------

/// The Python of a virtual environment with `ray` installed in this test's
/// folder, or why there is none.
fn ray_python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = root().join("ray-venv");
            let python = venv.join("bin").join("python");
            if python.exists() {
                return Ok(python);
            }
            let run = |cmd: &mut Command| -> Result<(), String> {
                let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    Err(format!(
                        "{cmd:?} failed: {}",
                        err.lines().last().unwrap_or("")
                    ))
                }
            };
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
            run(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                &format!("ray=={RAY_VERSION}"),
            ]))?;
            Ok(python)
        })
        .clone()
}

/// The Python with ray, or `None` after printing why the test is skipped
/// (a failure when `ACTFORGE_REQUIRE_RAY=1`).
fn ray_or_skip(test: &str) -> Option<PathBuf> {
    match ray_python() {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(
                std::env::var("ACTFORGE_REQUIRE_RAY").as_deref() != Ok("1"),
                "ACTFORGE_REQUIRE_RAY=1 but ray=={RAY_VERSION} cannot be installed: {why}"
            );
            eprintln!("skipping {test}: ray=={RAY_VERSION} cannot be installed: {why}");
            None
        }
    }
}

/// Tests that start Ray run one at a time (each instance takes the
/// machine's CPUs).
fn ray_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_ray_executor_reaches_the_hall_of_fame_of_one_thread() {
    let Some(python) = ray_or_skip("the_ray_executor_reaches_the_hall_of_fame_of_one_thread")
    else {
        return;
    };
    let _one_at_a_time = ray_lock();
    let dir = tmp("ray");
    search(
        &dir,
        &[
            "--executor",
            "ray",
            "--ray-local-cpus",
            "2",
            "--ray-python",
            python.to_str().unwrap(),
        ],
    );
    same_search(reference(), &dir);
    assert!(dir.join("executor").join("ray_driver.py").exists());
}

/// A stand-in for `actforge eval-candidates --run R --batch B --out O`
/// that dies on a batch containing `tanh` (the marked candidate of [`jobs`]).
const FAKE_TASK: &str = r#"#!/bin/sh
batch=$5; out=$7
echo try >> "$(dirname "$0")/tries-$(grep -c tanh "$batch")"
if grep -q tanh "$batch"; then kill -9 $$; fi
hash=$(sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/' "$batch")
printf '{"hash":"%s","seeds":[0],"recipe":"0000000000000000","fitness":1.5,"failure":null,"metrics":{},"seconds":0,"worker":0}\n' "$hash" > "$out"
"#;

#[test]
fn a_ray_task_that_fails_twice_is_scored_as_a_failure() {
    let Some(python) = ray_or_skip("a_ray_task_that_fails_twice_is_scored_as_a_failure") else {
        return;
    };
    let _one_at_a_time = ray_lock();
    let dir = tmp("ray-fake");
    let program = script(&dir, "fake-actforge", FAKE_TASK);
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let mut exec = RayExecutor::new(
        RaySetup {
            program,
            run_dir: dir.clone(),
            recipe: 0,
            options: RayOptions {
                address: None,
                python,
                gpus_per_task: 0.0,
                cpus_per_task: 1.0,
                local_cpus: Some(2),
            },
            timeout: None,
        },
        Arc::new(AtomicBool::new(false)),
    );
    exec.start().unwrap();
    let got = run_all(&mut exec);
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].fitness, got[2].fitness), (Some(1.5), Some(1.5)));
    let why = got[1].failure.clone().unwrap();
    assert!(why.starts_with("the Ray task failed twice"), "{why}");
    assert!(why.contains("signal 9"), "{why}");
    let tries = std::fs::read_to_string(dir.join("tries-1")).unwrap();
    assert_eq!(tries.lines().count(), 2, "tried once more: {tries}");
}

fn ray_cli(python: &Path, args: &[&str]) -> Output {
    Command::new(python.with_file_name("ray"))
        .args(args)
        .output()
        .unwrap()
}

/// The cluster goes away while a Ray task is certainly running: the
/// synthetic evaluator sleeps in every task, the test waits until it sees
/// a task's `eval-candidates` process, freezes the search and its driver
/// (so no result can be collected), checks the task is still running, and
/// only then stops the cluster. Whatever the machine's speed, the
/// generation cannot finish: the search must stop with a message naming
/// the cluster and `--resume`, and `--resume` on a new cluster must reach
/// the uninterrupted run's result.
#[test]
fn losing_the_ray_cluster_stops_the_search_and_resume_continues() {
    let Some(python) = ray_or_skip("losing_the_ray_cluster_stops_the_search_and_resume_continues")
    else {
        return;
    };
    let _one_at_a_time = ray_lock();
    let synthetic = ["--gens", "3", "--evaluator", "synthetic"];
    let reference = tmp("lost-reference");
    search(&reference, &[&synthetic[..], &["--workers", "1"]].concat());
    let port = 20000 + std::process::id() % 20000;
    // The cluster this machine runs (an explicit host:port needs the
    // cluster's auth token set up for the driver's session).
    let address = "auto".to_string();
    let start = || {
        let out = ray_cli(
            &python,
            &[
                "start",
                "--head",
                "--port",
                &port.to_string(),
                "--num-cpus",
                "2",
                "--include-dashboard",
                "false",
                "--disable-usage-stats",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    start();
    let dir = tmp("lost");
    let ray_flags = [
        "--executor",
        "ray",
        "--ray-address",
        &address,
        "--ray-python",
        python.to_str().unwrap(),
    ];
    let mut child = bin()
        .args(micro(
            &[
                &synthetic[..],
                &["--synthetic-sleep-ms", "2000"],
                &ray_flags[..],
            ]
            .concat(),
        ))
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = dir.to_str().unwrap();
    let driver = loop {
        // A task runs `eval-candidates` in a temporary run directory.
        let tasks = procs::find(&["eval-candidates", "actforge-ray-"]);
        let drivers = procs::find(&["ray_driver.py", run]);
        if let ([task, ..], [driver]) = (&tasks[..], &drivers[..]) {
            let frozen = procs::Frozen::new(&[child.id(), *driver]);
            if procs::alive(*task) {
                // Neither the driver nor the search can collect its result
                // now; stopping the cluster loses it for certain.
                let stopped = ray_cli(&python, &["stop", "--force"]);
                assert!(stopped.status.success());
                drop(frozen);
                break *driver;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the search ended before any Ray task was seen running"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the search did not stop: {err}");
    assert!(err.contains("the Ray cluster"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(dir.join("checkpoint.json").exists());
    assert!(!procs::alive(driver), "the driver was left running");

    start();
    let resumed = bin()
        .args(["search", "--quiet", "--resume"])
        .arg(&dir)
        .args(ray_flags)
        .output()
        .unwrap();
    let _ = ray_cli(&python, &["stop", "--force"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    same_search(&reference, &dir);
}

#[test]
fn the_slurm_script_shards_a_batch_and_the_merge_joins_it_by_hash() {
    let run = reference();
    let dir = tmp("slurm");
    std::fs::create_dir_all(&dir).unwrap();
    let formulas = ["sin(ARG0)", "safe_mul(ARG0, sin(ARG0))", "cos(ARG0)"];
    let batch = dir.join("batch.jsonl");
    let text: String = formulas
        .iter()
        .map(|f| format!("{}\n", serde_json::json!({ "formula": f })))
        .collect();
    std::fs::write(&batch, text).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Tasks 4 and 5 of an array 4-5, as Slurm would set them.
    for id in ["4", "5"] {
        let out = Command::new("bash")
            .arg(repo.join("scripts/slurm-eval.sh"))
            .arg(run)
            .arg(&batch)
            .arg(dir.join("shards"))
            .env("ACTFORGE", env!("CARGO_BIN_EXE_actforge"))
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_MIN", "4")
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shard0 = lines(&dir.join("shards/shard-0-of-2.jsonl"));
    let shard1 = lines(&dir.join("shards/shard-1-of-2.jsonl"));
    assert_eq!((shard0.len(), shard1.len()), (2, 1));
    let merged = Command::new("python3")
        .arg(repo.join("scripts/merge-results.py"))
        .arg(dir.join("shards/shard-0-of-2.jsonl"))
        .arg(dir.join("shards/shard-1-of-2.jsonl"))
        .arg(dir.join("shards/shard-0-of-2.jsonl"))
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let merged: Vec<Value> = String::from_utf8(merged.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The same results as one unsharded process.
    let whole = dir.join("whole.jsonl");
    assert!(eval_candidates(run, &batch, &whole).status.success());
    let mut want = lines(&whole);
    want.sort_by(|a, b| a["hash"].as_str().cmp(&b["hash"].as_str()));
    let fit = |v: &[Value]| -> Vec<(String, u64)> {
        v.iter()
            .map(|r| {
                (
                    r["hash"].as_str().unwrap().to_string(),
                    r["fitness"].as_f64().unwrap().to_bits(),
                )
            })
            .collect()
    };
    assert_eq!(fit(&merged), fit(&want));
}

// ---- Issue 17: eval-candidates' output file and batch lines, timeouts,
// ---- the merge and Slurm scripts

/// A run of the synthetic evaluator (instant evaluations), made once per
/// `name` with `extra` flags.
fn synthetic_run(name: &str, extra: &[&str]) -> PathBuf {
    let dir = tmp(name);
    let out = bin()
        .args([
            "search",
            "--quiet",
            "--evaluator",
            "synthetic",
            "--pop",
            "4",
            "--gens",
            "0",
            "--retrain-top",
            "0",
            "--no-export",
            "--seed",
            "5",
            "--start-with",
            "gelu(ARG0)",
            "--out",
        ])
        .arg(&dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn eval_candidates_never_replaces_a_file_that_is_not_its_own() {
    let run = synthetic_run("out-guard", &[]);
    let dir = tmp("out-guard-files");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.jsonl");
    std::fs::write(&batch, "{\"formula\": \"sin(ARG0)\"}\n").unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "my notes\n").unwrap();
    let log = run.join("evaluations.jsonl");
    for (out, needle) in [
        (log.clone(), "line 1 is not a result or error line"),
        (batch.clone(), "is the --batch file"),
        (notes.clone(), "is not a results file of eval-candidates"),
        (run.join("config.json"), "nothing was changed"),
        (dir.join("no-such-folder/out.jsonl"), "does not exist"),
        (run.clone(), "is a folder"),
    ] {
        let before = std::fs::read(&out).ok();
        let o = eval_candidates(&run, &batch, &out);
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", out.display());
        assert!(
            err.contains("--out") && err.contains(needle),
            "{}: {err}",
            out.display()
        );
        assert_eq!(
            std::fs::read(&out).ok(),
            before,
            "{} was changed",
            out.display()
        );
    }
    // The run still resumes (its log is intact).
    let o = bin()
        .args(["search", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        stderr_of(&o).contains("already finished"),
        "{}",
        stderr_of(&o)
    );
    // An empty file, or a results file of this command, is fine.
    let out = dir.join("results.jsonl");
    std::fs::write(&out, "").unwrap();
    assert!(eval_candidates(&run, &batch, &out).status.success());
    assert_eq!(lines(&out).len(), 1);
    let o = eval_candidates(&run, &batch, &out);
    assert!(o.status.success(), "{}", stderr_of(&o));
}

#[test]
fn batch_lines_that_disagree_or_cannot_be_read_are_refused_one_by_one() {
    let run = synthetic_run("batch-lines", &[]);
    let dir = tmp("batch-lines-files");
    std::fs::create_dir_all(&dir).unwrap();
    // The hash of sin(ARG0), from a line with the formula alone.
    let probe = dir.join("probe.jsonl");
    std::fs::write(&probe, "{\"formula\": \"sin(ARG0)\"}\n").unwrap();
    let probed = dir.join("probed.jsonl");
    assert!(eval_candidates(&run, &probe, &probed).status.success());
    let sin = lines(&probed)[0].clone();
    let hash = sin["hash"].as_str().unwrap();
    let mut text = Vec::new();
    text.extend(format!("{{\"hash\": \"{hash}\", \"formula\": \"cos(ARG0)\"}}\n").as_bytes());
    text.extend(b"{\"formula\": \"cos(ARG0)\", \"seed\": [3]}\n");
    text.extend(b"{\"formula\": \"cos(\xff)\"}\n");
    text.extend(
        format!(
            "{{\"formula\": \"sin(ARG0)\", \"seeds\": {:?}}}\n",
            vec![0; 1001]
        )
        .as_bytes(),
    );
    text.extend(format!("{{\"hash\": \"{hash}\", \"formula\": \"sin(ARG0)\"}}\n").as_bytes());
    text.extend(b"{\"formula\": \"cos(ARG0)\"}\n");
    let batch = dir.join("batch.jsonl");
    std::fs::write(&batch, text).unwrap();
    let out = dir.join("results.jsonl");
    let o = eval_candidates(&run, &batch, &out);
    assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
    let results = lines(&out);
    let errors: Vec<(u64, String)> = results
        .iter()
        .filter_map(|r| Some((r["line"].as_u64()?, r["error"].as_str()?.to_string())))
        .collect();
    let expect = [
        (1, "is not the hash of the line's `formula`"),
        (2, "unknown key `seed`"),
        (3, "not UTF-8"),
        (4, "above the limit of 1000"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:?}");
    for ((line, msg), (want, needle)) in errors.iter().zip(expect) {
        assert_eq!(*line, want);
        assert!(msg.contains(needle), "line {line}: {msg}");
    }
    // The good lines were evaluated, each under its own hash: sin's
    // fitness is the one it has alone, not cos's.
    let good: Vec<&Value> = results.iter().filter(|r| r["error"].is_null()).collect();
    assert_eq!(good.len(), 2, "{results:?}");
    assert_eq!(good[0]["hash"], sin["hash"]);
    assert_eq!(good[0]["fitness"], sin["fitness"]);
    assert_ne!(good[1]["hash"], sin["hash"]);
}

/// A stand-in for `actforge eval-candidates --batch - --out -` that hangs
/// (stops itself) on candidates whose formula contains `exp` (the marked
/// candidate of the jobs below) and scores others 1.5.
const HANGING_WORKER: &str = r#"#!/bin/sh
echo start >> "$(dirname "$0")/starts"
echo '{"ready": true}'
while IFS= read -r line; do
  case "$line" in *exp*) kill -STOP $$ ;; esac
  hash=$(printf '%s' "$line" | sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/')
  printf '{"hash":"%s","seeds":[0],"recipe":"0000000000000000","fitness":1.5,"failure":null,"metrics":{},"seconds":0,"worker":0}\n' "$hash"
done
"#;

#[test]
fn a_hung_worker_is_killed_retried_once_and_scored_as_timed_out() {
    let dir = tmp("hanging-worker");
    let program = script(&dir, "fake-actforge", HANGING_WORKER);
    let mut setup = WorkerSetup::new(program, dir.clone(), 0, vec![None]);
    // The honest candidates answer in milliseconds: a timeout far above
    // what load could add, so only the hung one reaches it.
    setup.timeout = Some(Duration::from_secs(10));
    let mut exec = ProcessWorkers::new(setup, Arc::new(AtomicBool::new(false)));
    exec.start().unwrap();
    let jobs: Vec<Job> = ["sin(x)", "exp(x)", "cos(x)"]
        .iter()
        .enumerate()
        .map(|(i, f)| job(0x2000 + i as u64, f))
        .collect();
    let mut got = Vec::new();
    exec.run(jobs, &mut |r| {
        got.push(r);
        Ok(())
    })
    .unwrap();
    got.sort_by_key(|r| r.key);
    assert_eq!((got[0].fitness, got[2].fitness), (Some(1.5), Some(1.5)));
    let why = got[1].failure.clone().unwrap();
    assert_eq!(got[1].fitness, None);
    assert!(why.starts_with("the evaluation timed out twice"), "{why}");
    assert!(
        why.contains("--eval-timeout") && why.contains("killed"),
        "{why}"
    );
    // Started, killed, restarted, killed, restarted for the last one.
    let starts = std::fs::read_to_string(dir.join("starts")).unwrap();
    assert_eq!(starts.lines().count(), 3, "{starts}");
    let log = std::fs::read_to_string(dir.join("workers/worker-0.log")).unwrap();
    assert!(log.contains("(try 1)") && log.contains("(try 2)"), "{log}");
}

#[test]
fn eval_candidates_with_a_timeout_scores_a_hung_evaluation_and_goes_on() {
    // Every synthetic evaluation of this run sleeps 60 s or more, far past
    // the 1 s timeout on any machine. The run is made without evaluating
    // (it only needs its config.json).
    let run = tmp("timeout-run");
    let settings = actforge::search::Settings {
        evaluator: actforge::search::config::EvaluatorKind::Synthetic { sleep_ms: 60_000 },
        export: false,
        retrain_top: 0,
        ..actforge::search::Settings::default()
    };
    drop(actforge::search::Search::create(&run, settings, &["test".into()]).unwrap());
    let dir = tmp("timeout-files");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.jsonl");
    std::fs::write(&batch, "{\"formula\": \"sin(ARG0)\"}\n").unwrap();
    let out = dir.join("results.jsonl");
    let o = bin()
        .args(["eval-candidates", "--quiet", "--eval-timeout", "1", "--run"])
        .arg(&run)
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let r = &lines(&out)[0];
    assert!(r["fitness"].is_null(), "{r}");
    let why = r["failure"].as_str().unwrap();
    assert!(why.contains("timed out twice"), "{why}");
    // Not with the worker protocol, whose sender enforces its own.
    let o = bin()
        .args([
            "eval-candidates",
            "--eval-timeout",
            "1",
            "--batch",
            "-",
            "--out",
            "-",
            "--run",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
}

#[test]
fn the_merge_script_says_what_is_wrong_instead_of_a_traceback() {
    let dir = tmp("merge-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"hash":"0123456789abcdef","formula":"x","seeds":[0],"recipe":"00000000000000aa","fitness":1.0,"failure":null,"metrics":{},"seconds":0,"worker":0}"#;
    let cases = [
        (
            "no-hash.jsonl",
            r#"{"formula":"x","seeds":[0],"recipe":"00000000000000aa","fitness":1.0}"#,
            "\"hash\"",
        ),
        ("array.jsonl", "[1, 2]", "not a JSON object"),
        (
            "recipe.jsonl",
            r#"{"hash":"0123456789abcdef","seeds":[0],"recipe":null,"fitness":1.0}"#,
            "\"recipe\"",
        ),
        (
            "nested.jsonl",
            r#"{"hash":"0123456789abcdef","seeds":[[0]],"recipe":"00000000000000aa","fitness":1.0}"#,
            "\"seeds\"",
        ),
    ];
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let merge = |paths: &[PathBuf]| {
        Command::new("python3")
            .arg(repo.join("scripts/merge-results.py"))
            .args(paths)
            .output()
            .unwrap()
    };
    for (name, line, needle) in cases {
        let p = dir.join(name);
        std::fs::write(&p, format!("{good}\n{line}\n")).unwrap();
        let o = merge(std::slice::from_ref(&p));
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("Traceback"), "{name}: {err}");
        assert!(
            err.contains(&format!("{}:2", p.display())) && err.contains(needle),
            "{name}: {err}"
        );
    }
    // Mixed recipe types across files, and a folder.
    let a = dir.join("a.jsonl");
    std::fs::write(&a, format!("{good}\n")).unwrap();
    let o = merge(&[a.clone(), dir.join("recipe.jsonl")]);
    assert!(!stderr_of(&o).contains("Traceback"), "{}", stderr_of(&o));
    assert_eq!(o.status.code(), Some(1));
    let o = merge(std::slice::from_ref(&dir));
    let err = stderr_of(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("Traceback") && err.contains("is a folder"),
        "{err}"
    );
}

#[test]
fn the_slurm_script_takes_shards_from_a_stepped_array_and_refuses_a_list() {
    let run = synthetic_run("slurm-stepped", &[]);
    let dir = tmp("slurm-stepped-files");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("batch.jsonl");
    let text: String = [
        "sin(ARG0)",
        "cos(ARG0)",
        "safe_mul(ARG0, sin(ARG0))",
        "gelu(ARG0)",
    ]
    .iter()
    .map(|f| format!("{}\n", serde_json::json!({ "formula": f })))
    .collect();
    std::fs::write(&batch, text).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let task = |id: &str, min: &str, max: &str, step: &str, count: &str| {
        Command::new("bash")
            .arg(repo.join("scripts/slurm-eval.sh"))
            .arg(&run)
            .arg(&batch)
            .arg(dir.join("shards"))
            .env("ACTFORGE", env!("CARGO_BIN_EXE_actforge"))
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_MIN", min)
            .env("SLURM_ARRAY_TASK_MAX", max)
            .env("SLURM_ARRAY_TASK_STEP", step)
            .env("SLURM_ARRAY_TASK_COUNT", count)
            .env_remove("CUDA_VISIBLE_DEVICES")
            .output()
            .unwrap()
    };
    // --array=0-4:2: tasks 0, 2, 4 are shards 0, 1, 2 of 3.
    for id in ["0", "2", "4"] {
        let o = task(id, "0", "4", "2", "3");
        assert!(o.status.success(), "{id}: {}", stderr_of(&o));
    }
    let total: usize = (0..3)
        .map(|i| lines(&dir.join(format!("shards/shard-{i}-of-3.jsonl"))).len())
        .sum();
    assert_eq!(total, 4, "every candidate in some shard");
    // --array=0,3,7: positions cannot be known; refused.
    let o = task("3", "0", "7", "1", "3");
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("evenly stepped"),
        "{}",
        stderr_of(&o)
    );
}

/// A stand-in for `actforge eval-candidates --run R --batch B --out O`
/// that stops itself (SIGSTOP) on a batch containing `exp`.
const HANGING_TASK: &str = r#"#!/bin/sh
batch=$5; out=$7
echo try >> "$(dirname "$0")/tries-$(grep -c exp "$batch")"
if grep -q exp "$batch"; then kill -STOP $$; fi
hash=$(sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/' "$batch")
printf '{"hash":"%s","seeds":[0],"recipe":"0000000000000000","fitness":1.5,"failure":null,"metrics":{},"seconds":0,"worker":0}\n' "$hash" > "$out"
"#;

#[test]
fn a_ray_task_that_hangs_is_killed_retried_once_and_scored_as_timed_out() {
    let Some(python) =
        ray_or_skip("a_ray_task_that_hangs_is_killed_retried_once_and_scored_as_timed_out")
    else {
        return;
    };
    let _one_at_a_time = ray_lock();
    let dir = tmp("ray-hang");
    let program = script(&dir, "fake-actforge", HANGING_TASK);
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let mut exec = RayExecutor::new(
        RaySetup {
            program,
            run_dir: dir.clone(),
            recipe: 0,
            options: RayOptions {
                address: None,
                python,
                gpus_per_task: 0.0,
                cpus_per_task: 1.0,
                local_cpus: Some(2),
            },
            // Far above what load adds to a script that answers at once.
            timeout: Some(Duration::from_secs(10)),
        },
        Arc::new(AtomicBool::new(false)),
    );
    exec.start().unwrap();
    let jobs: Vec<Job> = ["sin(x)", "exp(x)", "cos(x)"]
        .iter()
        .enumerate()
        .map(|(i, f)| job(0x3000 + i as u64, f))
        .collect();
    let mut got = Vec::new();
    exec.run(jobs, &mut |r| {
        got.push(r);
        Ok(())
    })
    .unwrap();
    got.sort_by_key(|r| r.key);
    assert_eq!((got[0].fitness, got[2].fitness), (Some(1.5), Some(1.5)));
    let why = got[1].failure.clone().unwrap();
    assert!(why.starts_with("the evaluation timed out twice"), "{why}");
    assert!(why.contains("--eval-timeout"), "{why}");
    let tries = std::fs::read_to_string(dir.join("tries-1")).unwrap();
    assert_eq!(tries.lines().count(), 2, "tried once more: {tries}");
}
