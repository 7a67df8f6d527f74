//! The CLI contract that other tools rely on.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_actforge"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";

#[test]
fn eval_json_has_y_and_dy_with_null_for_nonfinite() {
    let o = run(&["eval", "log(x)", "--x=-1,0,1", "--grad", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"y\":[null,null,0.0],\"dy\":[-1.0,null,1.0]}\n"
    );
}

#[test]
fn eval_seed_formula_matches_the_library() {
    let o = run(&["eval", QA, "--x=-2,-0.5,0,1.5", "--grad", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f = actforge::diff::Function::new(&actforge::ir::parse(QA).unwrap());
    for (i, x) in [-2.0, -0.5, 0.0, 1.5].into_iter().enumerate() {
        assert_eq!(v["y"][i].as_f64().unwrap(), f.value(x));
        assert_eq!(v["dy"][i].as_f64().unwrap(), f.derivative(x));
    }
}

#[test]
fn eval_without_grad_omits_dy() {
    let o = run(&["eval", "x * 2", "--x=1,2", "--json"]);
    assert_eq!(stdout(&o), "{\"y\":[2.0,4.0]}\n");
}

#[test]
fn eval_file_keeps_input_order_and_reports_bad_lines() {
    let dir = std::env::temp_dir().join(format!("actforge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("formulas.txt");
    std::fs::write(&file, "sin(x)\n\n# a comment\nsafe_dvi(x, 1)\nx + 1\n").unwrap();
    let o = run(&[
        "eval",
        "--file",
        file.to_str().unwrap(),
        "--x=0,1",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("{\"line\":1,\"y\":[0.0,0.84147"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "{\"line\":4,\"error\":\"unknown function `safe_dvi`\"}"
    );
    assert_eq!(lines[2], "{\"line\":5,\"y\":[1.0,2.0]}");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(" --> {}:4:1", file.display())),
        "{err}"
    );
    assert!(err.contains("did you mean `safe_div`?"), "{err}");
}

#[test]
fn simplify_json_contract() {
    let o = run(&["simplify", "safe_mul(safe_add(x, 0), 1.0)", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "input",
            "simplified",
            "infix",
            "nodes_before",
            "nodes_after",
            "hash",
            "derivative",
            "stop",
            "rewrites"
        ]
    );
    assert_eq!(v["input"], "safe_mul(safe_add(x, 0), 1.0)");
    assert_eq!(v["simplified"], "x");
    assert_eq!(v["infix"], "x");
    assert_eq!(v["nodes_before"], 5);
    assert_eq!(v["nodes_after"], 1);
    assert_eq!(v["derivative"], "1.0");
    let hash = v["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 16);
    // Same function, same hash.
    let o2 = run(&["simplify", "x", "--json"]);
    let v2: serde_json::Value = serde_json::from_str(&stdout(&o2)).unwrap();
    assert_eq!(v2["hash"], hash);
}

#[test]
fn bad_input_exits_nonzero_with_a_caret() {
    let o = run(&[
        "simplify",
        "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0))",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(
        err.starts_with("error: missing `)` at the end of the formula\n"),
        "{err}"
    );
    assert!(err.contains("^ expected `)` here"), "{err}");
}

#[test]
fn formulas_may_start_with_a_minus() {
    let o = run(&["eval", "-x", "--x=2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"y\":[-2.0]}\n");
}

#[test]
fn f32_precision_uses_the_fused_evaluator() {
    let o = run(&["eval", "sin(x)", "--x=1", "--precision", "f32", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["y"][0].as_f64().unwrap(), 1.0f32.sin() as f64);
}

#[test]
fn plot_writes_svg_and_png() {
    let dir = std::env::temp_dir().join(format!("actforge-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["svg", "png"] {
        let out = dir.join(format!("qa.{ext}"));
        let o = run(&["plot", QA, "--out", out.to_str().unwrap(), "--range=-4,4"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.len() > 1000, "{ext} is only {} bytes", bytes.len());
        match ext {
            "svg" => assert!(String::from_utf8_lossy(&bytes).contains("<svg")),
            _ => assert_eq!(&bytes[1..4], b"PNG"),
        }
    }
    let o = run(&["plot", "x", "--out", dir.join("x.gif").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use a .svg or .png file name"));
}

#[test]
fn help_teaches() {
    let o = run(&["eval", "--help"]);
    let h = stdout(&o);
    assert!(h.contains("--x=-2,-0.5,0,1.5") && h.contains("null"), "{h}");
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("actforge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn export_writes_the_package_for_both_seeds() {
    let t5 = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";
    for (formula, name) in [(QA, "qa"), (t5, "t5")] {
        let dir = tmpdir(&format!("export-{name}"));
        let o = run(&[
            "export",
            formula,
            "--out",
            dir.to_str().unwrap(),
            "--name",
            name,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        for ext in ["cu", "h", "png"] {
            assert!(
                dir.join(format!("{name}.{ext}")).is_file(),
                "{name}.{ext} missing"
            );
        }
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let f = actforge::diff::Function::new(&actforge::ir::parse(formula).unwrap());
        let hash = actforge::simplify::hash_hex(f.hash);
        assert!(
            readme.contains(&format!("`{hash}`")),
            "README lacks the hash"
        );
        assert!(readme.contains(&format!("act_{hash}_bwd_bf16(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx, unsigned long long n);")));
        assert!(readme.contains("cuModuleGetFunction") && readme.contains("cp.RawModule"));
        let cu = std::fs::read_to_string(dir.join(format!("{name}.cu"))).unwrap();
        assert_eq!(cu.matches("extern \"C\" __global__").count(), 6);
        let nvrtc_ok = actforge::runtime::nvrtc::load().is_ok();
        let has_bin = dir.join(format!("{name}.cubin")).is_file()
            && dir.join(format!("{name}.ptx")).is_file();
        if nvrtc_ok {
            assert!(
                has_bin,
                "NVRTC is available but no .ptx/.cubin was written: {}",
                stderr(&o)
            );
            let cubin = std::fs::read(dir.join(format!("{name}.cubin"))).unwrap();
            assert_eq!(&cubin[..4], b"\x7fELF");
            assert!(readme.contains("Registers per thread on sm_90"));
        } else {
            assert!(stderr(&o).contains("warning: no .ptx/.cubin written"));
        }
    }
}

/// (Not in a `--features cuda` build: that binary links libcuda and cannot
/// start with the library path emptied.)
#[cfg(not(feature = "cuda"))]
#[test]
fn export_without_nvrtc_still_writes_source_and_says_why() {
    let dir = tmpdir("export-nonvrtc");
    let o = Command::new(env!("CARGO_BIN_EXE_actforge"))
        .args([
            "export",
            "silu(x)",
            "--out",
            dir.to_str().unwrap(),
            "--name",
            "silu",
        ])
        .env("ACTFORGE_CUDA_TOOLS", "/nonexistent/actforge-tools")
        .env("ACTFORGE_NVRTC", "/nonexistent/libnvrtc.so.13")
        .env("LD_LIBRARY_PATH", "")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("silu.cu").is_file() && dir.join("README.md").is_file());
    let err = stderr(&o);
    if err.contains("warning: no .ptx/.cubin written") {
        assert!(
            err.contains("NVRTC (libnvrtc.so.13) is not available"),
            "{err}"
        );
        assert!(err.contains("scripts/install-cuda-tools.sh"), "{err}");
        assert!(!dir.join("silu.cubin").exists());
    } else {
        // The system linker path has its own libnvrtc.
        assert!(dir.join("silu.cubin").is_file());
    }
}

#[test]
fn codegen_prints_one_kernel_or_all() {
    let o = run(&["codegen", "silu(x)", "--dtype", "bf16", "--bwd"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let src = stdout(&o);
    assert_eq!(src.matches("extern \"C\" __global__").count(), 1);
    assert!(src.contains("_bwd_bf16(const act_bf16* __restrict__ x, const act_bf16* __restrict__ dy, act_bf16* __restrict__ dx, unsigned long long n)"));
    let all = stdout(&run(&["codegen", "silu(x)", "--all"]));
    assert_eq!(all.matches("extern \"C\" __global__").count(), 6);
}
