//! Golden files of generated code. A change in generated kernels shows up
//! as a reviewable diff under `tests/golden/`; rewrite them with
//! `BLESS=1 cargo test --test golden`. The goldens hold the code under
//! test: the device prelude (`kernels/act_math.cuh`, the same in every
//! module) stands as one marker line, so an edit of the prelude does not
//! rewrite them all; each module is checked to hold it verbatim, once.

use std::path::PathBuf;

use actforge::codegen::{Direction, Dtype, Layout, Module, Selection, ACT_MATH};
use actforge::diff::Function;
use actforge::ir::parse;

/// The prelude's place in a golden.
const PRELUDE_MARKER: &str = "// <kernels/act_math.cuh, verbatim>\n";

/// `source` with the device prelude replaced by [`PRELUDE_MARKER`]; it must
/// be there exactly once, verbatim.
fn without_prelude(source: &str) -> String {
    assert_eq!(
        source.matches(ACT_MATH).count(),
        1,
        "the module does not hold kernels/act_math.cuh verbatim, once"
    );
    source.replacen(ACT_MATH, PRELUDE_MARKER, 1)
}

/// A module's source against its golden, without the prelude.
fn check_module(name: &str, source: &str) {
    check(name, &without_prelude(source));
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run `BLESS=1 cargo test --test golden`",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(
                expected.lines().count().min(actual.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{} differs from the generated code (first difference at line {line});\n\
             review the change and run `BLESS=1 cargo test --test golden` to accept it\n--- golden\n{}\n+++ generated\n{}",
            path.display(),
            expected.lines().nth(line - 1).unwrap_or("<end>"),
            actual.lines().nth(line - 1).unwrap_or("<end>")
        );
    }
}

fn function(src: &str) -> Function {
    Function::new(&parse(src).unwrap())
}

#[test]
fn seed_qa_module() {
    let f = function("gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))");
    check_module("seed_qa.cu", &Module::single(&f).source());
    check(
        "seed_qa.h",
        &actforge::export::header(&Module::single(&f), "ACTFORGE_SEED_QA_H"),
    );
}

#[test]
fn seed_t5_module() {
    let f = function("log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))");
    check_module("seed_t5.cu", &Module::single(&f).source());
}

#[test]
fn gelu_bf16_backward_only() {
    let f = function("gelu_like(x)");
    let mut m = Module::new(Selection {
        dtypes: vec![Dtype::Bf16],
        directions: vec![Direction::Bwd],
        ..Selection::default()
    });
    m.add(&f);
    check_module("gelu_like_bwd_bf16.cu", &m.source());
}

#[test]
fn seeds_dispatch_module_f32() {
    let mut m = Module::new(Selection {
        dtypes: vec![Dtype::F32],
        layout: Layout::Dispatch,
        ..Selection::default()
    });
    m.add(&function(
        "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))",
    ));
    m.add(&function(
        "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))",
    ));
    check_module("seeds_dispatch_f32.cu", &m.source());
}
