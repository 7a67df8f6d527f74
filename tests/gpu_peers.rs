//! `scripts/gpu-peers.py` (the comparison with PyTorch eager, torch.compile
//! and CuPy) and the dry run of `scripts/gpu-check.sh`, on this machine,
//! so that the first GPU run is not the script's first run.
//!
//! The tests that need torch use `ACTFORGE_PEERS_PYTHON` (a Python with
//! torch, e.g. a virtualenv with `pip install torch numpy`), else
//! `python3`; without torch they print why and pass. CI installs no torch,
//! so there they only check the formula errors and the dry run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python_cmd() -> String {
    std::env::var("ACTFORGE_PEERS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Python to run the script with, if it can import torch.
fn python_with_torch() -> Option<String> {
    let py = python_cmd();
    match Command::new(&py).args(["-c", "import torch"]).output() {
        Ok(o) if o.status.success() => Some(py),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            eprintln!(
                "skipped: `{py}` cannot import torch ({}); set ACTFORGE_PEERS_PYTHON to a Python with torch",
                err.lines().last().unwrap_or("")
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: `{py}` does not run: {e}");
            None
        }
    }
}

fn peers(py: &str, args: &[&str]) -> Output {
    Command::new(py)
        .arg(repo().join("scripts/gpu-peers.py"))
        .args(args)
        .output()
        .expect("python runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-peers-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn row<'a>(rows: &'a [Value], key: &str, dtype: &str, dir: &str, variant: &str) -> &'a Value {
    rows.iter()
        .find(|r| {
            r["formula_key"] == key
                && r["dtype"] == dtype
                && r["direction"] == dir
                && r["variant"] == variant
        })
        .unwrap_or_else(|| panic!("no row for {key} {dtype} {dir} {variant}"))
}

/// A timed row: positive time, verified within tolerance.
fn assert_timed(r: &Value) {
    assert!(r["ms"].as_f64().is_some_and(|ms| ms > 0.0), "{r}");
    assert!(r["gbps"].as_f64().is_some_and(|g| g > 0.0), "{r}");
    let v = &r["verified"];
    for k in ["y_max_err_ratio", "dx_max_err_ratio"] {
        assert!(v[k].as_f64().is_some_and(|e| e <= 1.0), "{k}: {r}");
    }
    assert!(v["compared"].as_u64().is_some_and(|n| n > 4000), "{r}");
}

#[test]
fn runs_end_to_end_on_cpu_torch_and_skips_the_cuda_only_variants() {
    let Some(py) = python_with_torch() else {
        return;
    };
    let out = temp_dir("e2e");
    let o = peers(
        &py,
        &[
            "--device",
            "cpu",
            "--sizes",
            "4099",
            "--iters",
            "3",
            "--warmup",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--actforge",
            env!("CARGO_BIN_EXE_actforge"),
        ],
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let lines = json_lines(&out.join("peers.jsonl"));
    assert_eq!(
        text(&o.stdout).lines().count(),
        lines.len(),
        "stdout = peers.jsonl"
    );

    // The export packages: made by the binary, their README's signatures
    // found in the PTX, their Python block valid Python.
    let pkgs: Vec<&Value> = lines.iter().filter(|l| l["event"] == "package").collect();
    assert_eq!(pkgs.len(), 3, "{pkgs:?}");
    let nvrtc = pkgs.iter().all(|p| p.get("error").is_none());
    for p in &pkgs {
        if nvrtc {
            assert_eq!(p["kernels"].as_array().unwrap().len(), 6, "{p}");
            assert_eq!(p["readme_python"], "parses");
        } else {
            eprintln!("no NVRTC here, so no PTX to check the package against: {p}");
        }
    }

    let rows: Vec<Value> = lines
        .iter()
        .filter(|l| l.get("variant").is_some())
        .cloned()
        .collect();
    for key in ["qa", "t5", "gelu"] {
        for dtype in ["f32", "bf16"] {
            for dir in ["fwd", "fwdbwd"] {
                for v in ["eager", "builtin-gelu"] {
                    assert_timed(row(&rows, key, dtype, dir, v));
                }
                let c = row(&rows, key, dtype, dir, "compile");
                if c.get("ms").is_some() {
                    assert_timed(c);
                    assert!(c["compile_s"].as_f64().is_some_and(|s| s > 0.0), "{c}");
                } else {
                    let why = c["skipped"].as_str().unwrap_or_else(|| panic!("{c}"));
                    assert!(why.starts_with("torch.compile is not available"), "{c}");
                }
                for v in ["actforge", "copy"] {
                    let r = row(&rows, key, dtype, dir, v);
                    let why = r["skipped"].as_str().unwrap_or_else(|| panic!("{r}"));
                    assert!(why.starts_with("CUDA only"), "{r}");
                }
            }
        }
    }
    assert!(rows.iter().all(|r| r.get("failed").is_none()));
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["failed"], false);

    let md = std::fs::read_to_string(out.join("peers.md")).unwrap();
    assert!(
        md.contains("### forward + backward, bf16, 4,099 elements"),
        "{md}"
    );
    assert!(md.contains("| `t5` |"), "{md}");
    assert!(md.contains("- actforge: CUDA only"), "{md}");
    let eager = std::fs::read_to_string(out.join("eager_qa.py")).unwrap();
    assert!(
        eager.contains("torch.sigmoid(") && eager.contains("torch.relu("),
        "{eager}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_verifier_accepts_one_rounding_and_rejects_small_errors() {
    let Some(py) = python_with_torch() else {
        return;
    };
    let o = peers(&py, &["--self-test"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let checks: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(checks.len(), 11, "{checks:?}");
    for c in &checks {
        assert_eq!(c["ok"], true, "{c}");
    }
}

#[test]
fn the_budget_stops_before_measuring_and_still_writes_the_table() {
    let Some(py) = python_with_torch() else {
        return;
    };
    let out = temp_dir("budget");
    let args = [
        "--device",
        "cpu",
        "--sizes",
        "4099,8192",
        "--variants",
        "eager",
        "--budget",
        "0.001",
        "--out",
    ];
    let o = peers(&py, &[&args[..], &[out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = json_lines(&out.join("peers.jsonl"));
    let budget = lines
        .iter()
        .find(|l| l["event"] == "budget")
        .expect("a budget line");
    assert_eq!(budget["not_measured"].as_array().unwrap().len(), 2 * 2 * 3);
    let md = std::fs::read_to_string(out.join("peers.md")).unwrap();
    assert!(
        md.contains("Stopped by the time budget (--budget 0.001 s): 12 of 12"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn without_a_cuda_device_it_says_so_and_exits_3() {
    let Some(py) = python_with_torch() else {
        return;
    };
    let has_cuda = Command::new(&py)
        .args([
            "-c",
            "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)",
        ])
        .status()
        .unwrap()
        .success();
    if has_cuda {
        eprintln!("skipped: this machine has a CUDA device");
        return;
    }
    let o = peers(&py, &["--out", temp_dir("nocuda").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("sees no CUDA device"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_bad_formula_is_exit_2_with_a_caret_under_the_fault() {
    // Parsing comes before torch is imported: any python3 will do.
    let py = python_cmd();
    let Ok(o) = Command::new(&py)
        .arg(repo().join("scripts/gpu-peers.py"))
        .args(["--formula", "safe_add(x, sin(x"])
        .output()
    else {
        eprintln!("skipped: `{py}` does not run");
        return;
    };
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "gpu-peers: bad formula: expected `)`, found the end\n  safe_add(x, sin(x\n                   ^ (offset 17)\n"
    );
    let o = Command::new(&py)
        .arg(repo().join("scripts/gpu-peers.py"))
        .args(["--formula", "x + 1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unexpected `+`: the peers script reads DEAP call syntax only")
    );
}

#[test]
fn the_gpu_check_dry_run_fails_cleanly_and_reports_the_peers_skip() {
    let out = temp_dir("check");
    let o = Command::new("bash")
        .arg(repo().join("scripts/gpu-check.sh"))
        .env("OUT", &out)
        .env("PEERS_PYTHON", "/nonexistent/python3")
        .env("GPU_CHECK_BUDGET", "120")
        .output()
        .expect("bash runs");
    let log = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{log}\n{}", text(&o.stderr));
    assert!(
        log.contains("peers: skipped: /nonexistent/python3 cannot import torch"),
        "{log}"
    );
    assert!(log.contains("gpu-check: FAIL"), "{log}");
    let _ = std::fs::remove_dir_all(&out);
}
