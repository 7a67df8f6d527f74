//! Regression tests of issue 8, items 6–10 and 12–14: each tests a class
//! of defect (overflowing grids and hanging plots, closed pipes, sizes
//! that cannot be served, half-written exports, an invalid C header, lost
//! digits, bench statistics, diagnostics cosmetics) with several variants.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::harness::bin;

/// CPU seconds a command of these tests may use: each takes milliseconds,
/// so only a busy hang reaches it (SIGXCPU), whatever the machine's load.
const CPU_SECONDS: u64 = 120;
/// Address space a command of these tests may map: far above what any of
/// them needs, far below the sizes they must refuse to allocate.
const ADDRESS_SPACE_KIB: u64 = 4 << 20;

/// The binary under CPU-time and address-space limits (`ulimit -t -v`), so
/// that a hang or an attempt to allocate an unservable size fails the
/// test by what the process does, not by how long the machine takes.
fn limited() -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!(
            "ulimit -t {CPU_SECONDS} -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_actforge"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-hard-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Wait for `child` (started from [`limited`], so a busy hang ends at the
/// CPU limit); a hang that does not use the CPU is cut off by a backstop
/// of `BACKSTOP` of wall time, far beyond any load's effect on commands
/// that take milliseconds. Fails either way.
fn wait_within(mut child: Child, what: &str) -> Output {
    const BACKSTOP: Duration = Duration::from_secs(600);
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.code().is_some(),
                "{what} was killed ({}): it hangs",
                o.status
            );
            return o;
        }
        if start.elapsed() > BACKSTOP {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {BACKSTOP:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "`{needle}` not in: {}",
        stderr(o)
    );
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

// ----- 6. grids and plot ranges --------------------------------------------

#[test]
fn plots_of_extreme_ranges_finish() {
    let dir = scratch("plot-ranges");
    let ranges = [
        "-1e308,1e308",
        "-1.7976931348623157e308,1.7976931348623157e308",
        "1,1.000000000000001",
        "1e300,1.0000000000000002e300",
        "0,5e-324",
        "-1e-310,1e-310",
        "1e20,1.0000000000000001e20",
    ];
    for (i, range) in ranges.iter().enumerate() {
        let out = dir.join(format!("p{i}.svg"));
        let child = limited()
            .args(["plot", "x * 0.5", "--out", out.to_str().unwrap()])
            .arg(format!("--range={range}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = wait_within(child, &format!("plot --range={range}"));
        assert!(o.status.success(), "--range={range}: {}", stderr(&o));
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("<polyline"), "--range={range}: no curve drawn");
    }
}

#[test]
fn eval_grids_of_extreme_ranges_are_finite() {
    let o = run(&["eval", "x", "--x=-1e308:1e308:3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"y\":[-1e+308,0.0,1e+308]}\n");
    let o = run(&[
        "eval",
        "x",
        "--x=-1.7976931348623157e308:1.7976931348623157e308:1001",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ys: Vec<f64> = v["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y.as_f64().expect("finite"))
        .collect();
    assert_eq!(ys.len(), 1001);
    assert!(ys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((ys[0], ys[1000]), (-f64::MAX, f64::MAX));
}

#[test]
fn reversed_and_nonfinite_ranges_are_usage_errors() {
    let dir = scratch("plot-bad");
    let svg = dir.join("x.svg");
    for range in ["5,-5", "1,1", "-inf,1", "0,1e309", "nan,1", "1"] {
        let o = run(&[
            "plot",
            "x",
            "--out",
            svg.to_str().unwrap(),
            &format!("--range={range}"),
        ]);
        usage_error(&o, "--range");
    }
    for grid in ["1:0:3", "0:inf:3", "-1e309:0:2", "nan:1:2"] {
        usage_error(&run(&["eval", "x", &format!("--x={grid}")]), "--x");
    }
    assert!(!svg.exists());
}

// ----- 7. a closed standard output ------------------------------------------

/// Run with standard output a pipe whose reading end is already closed, so
/// the first write fails with EPIPE.
fn run_into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = limited()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_within(child, &args.join(" "))
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let dir = scratch("pipe");
    let file = dir.join("f.txt");
    std::fs::write(&file, "sin(x)\ncos(x)\n").unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["eval", "x", "--x=-1e6:1e6:200000"],
        vec!["eval", "x", "--x=1,2", "--json"],
        vec!["eval", "--file", file.to_str().unwrap(), "--x=0:1:1000"],
        vec!["simplify", "safe_div(x, 1)"],
        vec!["simplify", "x", "--json"],
        vec!["codegen", "silu(x)", "--all"],
        vec!["prelude"],
        vec!["--help"],
        vec!["eval", "--help"],
        vec!["--version"],
        vec!["bench", "x", "--elems", "64", "--iters", "1"],
    ];
    for args in cases {
        let o = run_into_closed_pipe(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_reader_that_stops_early_ends_eval_quietly() {
    let mut child = limited()
        .args(["eval", "x", "--x=-1e6:1e6:200000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 200];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // `| head -c 200`
    let o = wait_within(child, "eval | head");
    assert!(String::from_utf8_lossy(&first).contains("-1000000"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

// ----- 8. sizes that cannot be served ---------------------------------------

#[test]
fn unservable_sizes_are_usage_errors_naming_the_limit() {
    let svg = scratch("sizes").join("x.svg");
    let svg = svg.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["bench", "x", "--elems", "18446744073709551615"],
            "268435456",
        ),
        (vec!["bench", "x", "--elems", "100000000000"], "268435456"),
        (vec!["bench", "x", "--elems", "0"], "268435456"),
        (
            vec!["bench", "x", "--elems", "99999999999999999999999"],
            "--elems",
        ),
        (
            vec!["bench", "x", "--elems", "64", "--iters", "0"],
            "100000",
        ),
        (
            vec![
                "bench",
                "x",
                "--elems",
                "64",
                "--iters",
                "18446744073709551615",
            ],
            "100000",
        ),
        (vec!["eval", "x", "--x=0:1:100000000000"], "10000000"),
        (vec!["eval", "x", "--x=0:1:10000001"], "10000000"),
        (vec!["eval", "x", "--x=0:1:0"], "10000000"),
        (
            vec!["plot", "x", "--out", svg, "--samples", "1000000000000"],
            "100000",
        ),
        (vec!["plot", "x", "--out", svg, "--samples", "1"], "100000"),
        (vec!["bench-compile", "--singles", "0"], "1000"),
        (
            vec!["bench-compile", "--batch", "18446744073709551615"],
            "4096",
        ),
    ];
    for (args, limit) in cases {
        // Refused before anything is allocated or run: under the address
        // space and CPU limits an attempt would abort or be killed instead.
        let o = limited().args(&args).output().unwrap();
        usage_error(&o, limit);
    }
}

// ----- 9. export: atomic, archs checked first -------------------------------

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_unsupported_arch_is_refused_before_anything_is_written() {
    let dir = scratch("export-arch");
    for (arch, out) in [
        ("sm_50", dir.join("pkg")),
        ("sm_61", dir.join("new/parents/pkg")),
        ("sm_999", dir.join("pkg2")),
    ] {
        let o = run(&[
            "export",
            "silu(x)",
            "--out",
            out.to_str().unwrap(),
            "--arch",
            arch,
        ]);
        usage_error(&o, "supports sm_75, sm_80");
        assert!(
            stderr(&o).contains(&format!("--arch {arch}")),
            "{}",
            stderr(&o)
        );
        assert!(entries(&dir).is_empty(), "{arch} left {:?}", entries(&dir));
    }
}

#[test]
fn export_replaces_only_with_force_and_never_half_way() {
    let dir = scratch("export-force");
    let out = dir.join("pkg");
    let export = |formula: &str, extra: &[&str]| {
        let mut args = vec![
            "export",
            formula,
            "--out",
            out.to_str().unwrap(),
            "--name",
            "k",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = export("silu(x)", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = entries(&out);
    assert!(first.contains(&"k.cu".to_string()) && first.contains(&"README.md".to_string()));
    assert!(
        !entries(&dir).iter().any(|e| e.contains("actforge-export")),
        "staging left: {:?}",
        entries(&dir)
    );
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let cu_before = std::fs::read_to_string(out.join("k.cu")).unwrap();

    // Non-empty, no --force: refused, untouched.
    let o = export("gelu(x)", &[]);
    usage_error(&o, "--force");
    assert_eq!(
        std::fs::read_to_string(out.join("k.cu")).unwrap(),
        cu_before
    );

    // A failing export with --force: untouched.
    let o = export("gelu(x)", &["--force", "--arch", "sm_52"]);
    usage_error(&o, "supports");
    assert_eq!(
        std::fs::read_to_string(out.join("k.cu")).unwrap(),
        cu_before
    );

    // --force: the package is replaced, other files stay, no staging left.
    let o = export("gelu(x)", &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cu_after = std::fs::read_to_string(out.join("k.cu")).unwrap();
    assert_ne!(cu_after, cu_before);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    let mut want = first.clone();
    want.push("notes.txt".into());
    want.sort();
    assert_eq!(entries(&out), want);

    // An existing empty directory needs no --force.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&[
        "export",
        "x",
        "--out",
        empty.to_str().unwrap(),
        "--name",
        "e",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(empty.join("e.h").is_file());

    // A file in the way is an error.
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    usage_error(
        &run(&["export", "x", "--out", file.to_str().unwrap()]),
        "not a directory",
    );
}

/// (Not in a `--features cuda` build: that binary links libcuda and cannot
/// start with the library path emptied.)
#[cfg(not(feature = "cuda"))]
#[test]
fn without_nvrtc_archs_are_checked_against_the_nvrtc_13_list() {
    let dir = scratch("export-noarch");
    let o = bin()
        .args([
            "export",
            "x",
            "--out",
            dir.join("p").to_str().unwrap(),
            "--arch",
            "sm_50",
        ])
        .env("ACTFORGE_CUDA_TOOLS", "/nonexistent/actforge-tools")
        .env("ACTFORGE_NVRTC", "/nonexistent/libnvrtc.so.13")
        .env("LD_LIBRARY_PATH", "")
        .output()
        .unwrap();
    usage_error(&o, "sm_75, sm_80, sm_86");
    assert!(entries(&dir).is_empty());
}

// ----- 10. the exported header is C11 and C++ -------------------------------

fn require_toolchain() -> bool {
    std::env::var("ACTFORGE_REQUIRE_TOOLCHAIN").is_ok_and(|v| v == "1")
}

/// `cc` if it runs, else None after printing why (a failure when
/// `ACTFORGE_REQUIRE_TOOLCHAIN=1`).
fn compiler_or_skip(cc: &str) -> Option<String> {
    let ok = Command::new(cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !require_toolchain(),
            "ACTFORGE_REQUIRE_TOOLCHAIN=1 but `{cc}` was not found"
        );
        eprintln!("SKIPPED: no `{cc}` found; the exported header was not compiled with it");
        return None;
    }
    Some(cc.to_string())
}

/// A C translation unit that includes `header` and binds every kernel to a
/// function pointer of the documented type.
fn user_of(header: &str, h: &str) -> String {
    let mut c = format!("#include \"{h}\"\n\n");
    for line in header.lines().filter(|l| l.starts_with("__global__ void ")) {
        let name = line["__global__ void ".len()..].split('(').next().unwrap();
        let params = line.split('(').nth(1).unwrap().trim_end_matches(");");
        c += &format!("void (*const p_{name})({params}) = {name};\n");
    }
    c + "\nint main(void) { return 0; }\n"
}

#[test]
fn the_exported_header_compiles_as_c11_and_cpp17() {
    let dir = scratch("header");
    let out = dir.join("pkg");
    let o = run(&[
        "export",
        "gelu_like(x)",
        "--out",
        out.to_str().unwrap(),
        "--name",
        "gl",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let header = std::fs::read_to_string(out.join("gl.h")).unwrap();
    assert_eq!(header.matches("__global__ void act_").count(), 6);
    std::fs::write(dir.join("use.c"), user_of(&header, "gl.h")).unwrap();
    let inc = format!("-I{}", out.display());
    let checks: [(&str, Vec<&str>); 3] = [
        (
            "gcc",
            vec!["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"],
        ),
        (
            "g++",
            vec![
                "-std=c++17",
                "-Wall",
                "-Wextra",
                "-Wpedantic",
                "-Werror",
                "-x",
                "c++",
            ],
        ),
        ("gcc", vec!["-std=c11", "-Wall", "-Werror", "-x", "c"]),
    ];
    for (i, (cc, flags)) in checks.iter().enumerate() {
        let Some(cc) = compiler_or_skip(cc) else {
            continue;
        };
        let file = if i == 2 {
            out.join("gl.h") // the header on its own
        } else {
            dir.join("use.c")
        };
        let o = Command::new(&cc)
            .args(flags)
            .arg(&inc)
            .arg("-fsyntax-only")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cc} {flags:?} {}:\n{}\n{header}",
            file.display(),
            stderr(&o)
        );
    }
}

// ----- 12. enough digits ------------------------------------------------------

#[test]
fn text_output_keeps_small_and_large_values() {
    let o = run(&["eval", "exp(x)", "--x=-30,-700,1e-300,700", "--grad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "9.357622968840175e-14",
        "9.85967654375977e-305",
        "1e-300",
        "1.0142320547350045e304",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // Every printed value reads back as the JSON value (both parsed with
    // Rust's correctly rounded parser; serde_json's default one is not).
    let j = run(&["eval", "exp(x)", "--x=-30,-700,1e-300,700", "--json"]);
    let json: Vec<f64> = stdout(&j)
        .trim()
        .trim_start_matches("{\"y\":[")
        .trim_end_matches("]}")
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let printed: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(printed, json);
    assert_eq!(printed[0], (-30f64).exp());

    let o = run(&["eval", "exp(x)", "--x=-30,-100", "--precision", "f32"]);
    let text = stdout(&o);
    // The shortest f32 text, and an f32 subnormal still visible.
    assert!(text.contains("9.357623e-14\n"), "{text}");
    let last: f32 = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(last > 0.0 && last < f32::MIN_POSITIVE, "{text}");
}

// ----- 13. bench statistics ----------------------------------------------------

#[test]
fn cpu_bench_rows_have_copy_baseline_and_spread() {
    let o = run(&[
        "bench",
        "gelu_like(x)",
        "--elems",
        "4096",
        "--iters",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["iters"], 5);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[0]["variant"], "copy");
    assert!((rows[0]["pct_of_copy"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    for r in rows {
        for key in [
            "variant",
            "pass",
            "elems",
            "seconds",
            "gbps",
            "pct_of_copy",
            "min_seconds",
            "max_seconds",
            "rounds",
        ] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        let (lo, med, hi) = (
            r["min_seconds"].as_f64().unwrap(),
            r["seconds"].as_f64().unwrap(),
            r["max_seconds"].as_f64().unwrap(),
        );
        assert!(0.0 < lo && lo <= med && med <= hi, "{r}");
        assert_eq!(r["rounds"], 5);
    }
    assert!(v["warnings"].is_array());
    for key in ["speedup_vs_composed", "speedup_vs_builtin"] {
        assert!(v[key]["fwdbwd"].as_f64().is_some(), "{key}");
    }
    let o = run(&["bench", "x", "--elems", "256", "--iters", "2"]);
    let text = stdout(&o);
    assert!(
        text.contains("min (ms)") && text.contains("% copy"),
        "{text}"
    );
}

// ----- 14. diagnostics cosmetics ---------------------------------------------

#[test]
fn file_diagnostics_count_columns_in_the_line_as_written() {
    let dir = scratch("file-cols");
    let file = dir.join("f.txt");
    std::fs::write(&file, "sin(x)\n   sin(x +\n\t\tsafe_dvi(x, 1)\n").unwrap();
    let o = run(&["eval", "--file", file.to_str().unwrap(), "--x=0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(" --> {}:2:11\n", file.display())),
        "{err}"
    );
    assert!(err.contains("2 |    sin(x +\n  |           ^"), "{err}");
    assert!(
        err.contains(&format!(" --> {}:3:3\n", file.display())),
        "{err}"
    );
    assert!(
        err.contains("3 |   safe_dvi(x, 1)\n  |   ^^^^^^^^"),
        "{err}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted_in_defs_and_formula_files() {
    let dir = scratch("bom");
    let defs = dir.join("defs.act");
    std::fs::write(&defs, "\u{feff}hard(a) = clamp(a, -1, 1)\n").unwrap();
    let o = run(&[
        "eval",
        "hard(x)",
        "--defs",
        defs.to_str().unwrap(),
        "--x=3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"y\":[1.0]}\n");
    let file = dir.join("f.txt");
    std::fs::write(&file, "\u{feff}x + 1\n").unwrap();
    let o = run(&["eval", "--file", file.to_str().unwrap(), "--x=1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"line\":1,\"y\":[2.0]}\n");
    let o = run(&["prelude", "--defs", defs.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("hard(a) = clamp(a, -1, 1)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_byte_order_mark_in_a_bleu_file_is_warned_about() {
    // Issue 17: sacreBLEU scores the mark as text (so does actforge, to
    // stay equal to it), which lowers the score: the user is told.
    let dir = scratch("bleu-bom");
    let (plain, marked, hyp) = (
        dir.join("ref.txt"),
        dir.join("ref-bom.txt"),
        dir.join("hyp.txt"),
    );
    std::fs::write(&plain, "the cat sat on the mat\n").unwrap();
    std::fs::write(&marked, "\u{feff}the cat sat on the mat\n").unwrap();
    std::fs::write(&hyp, "the cat sat on the mat\n").unwrap();
    let score = |r: &Path| {
        let o = run(&[
            "bleu",
            "--ref",
            r.to_str().unwrap(),
            "--hyp",
            hyp.to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["score"].as_f64().unwrap(), stderr(&o))
    };
    let (clean, quiet) = score(&plain);
    let (lowered, warned) = score(&marked);
    assert!(lowered < clean, "{lowered} vs {clean}");
    assert!(!quiet.contains("byte-order mark"), "{quiet}");
    assert!(
        warned.contains(&format!("{}:1", marked.display())) && warned.contains("byte-order mark"),
        "{warned}"
    );
}

/// No raw control character but newlines.
fn no_raw_controls(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn control_characters_are_escaped_in_every_message() {
    let dir = scratch("controls");
    let file = dir.join("f.txt");
    std::fs::write(&file, "x\u{0} + 1\nx\u{7f}\n\u{1b}[31mx\nx + \u{202e}1\n").unwrap();
    let o = run(&["eval", "--file", file.to_str().unwrap(), "--x=0", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        no_raw_controls(&err) && no_raw_controls(&out),
        "{err:?}\n{out:?}"
    );
    for esc in ["\\u{0}", "\\u{7f}", "\\u{1b}", "\\u{202e}"] {
        assert!(err.contains(esc), "{esc} missing: {err}");
    }
    assert!(err.contains("1 | x\\u{0} + 1\n  |  ^^^^^"), "{err}");
    for formula in ["x\u{7f}", "\u{1b}[2Jx", "sin(x\u{8})"] {
        let o = run(&["eval", formula, "--x=0"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(no_raw_controls(&stderr(&o)), "{:?}", stderr(&o));
    }
    // Flags echoed by usage errors, and paths in I/O errors.
    for args in [
        vec!["bench", "x", "--elems", "\u{1b}[31m"],
        vec!["eval", "x", "--x=\u{7f}"],
        vec!["eval", "x", "--x=0", "--defs", "/nonexistent/\u{1b}[2J"],
        vec!["plot", "x", "--out", "a.svg", "--range=0,\u{7}1"],
    ] {
        let o = run(&args);
        assert!(!o.status.success());
        assert!(no_raw_controls(&stderr(&o)), "{args:?}: {:?}", stderr(&o));
    }
    let defs = dir.join("bad\u{7}.act");
    std::fs::write(&defs, "f(a) = a\u{0}\n").unwrap();
    let o = run(&["eval", "x", "--defs", defs.to_str().unwrap(), "--x=0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(no_raw_controls(&stderr(&o)), "{:?}", stderr(&o));
    assert!(stderr(&o).contains("bad\\u{7}.act"), "{}", stderr(&o));
}
