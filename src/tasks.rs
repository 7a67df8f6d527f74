//! The library side of the `actforge` commands: what a program needs to do
//! what one command does (load a definitions file, read a file of
//! formulas, evaluate at points in a chosen precision, build the kernel
//! source, print a formula within a size limit), so that `cli` only parses
//! flags, calls these and prints.
//!
//! Sits just below `cli`: uses `ir`, `diff`, `codegen` and the leaves; must
//! not parse flags or print.

use std::path::Path;

use crate::codegen::{Direction, Dtype, Inlining, MathMode, Module, Selection};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::{
    to_infix_limited, to_prefix_limited, Graph, Id, Library, RefEval, Tape, MAX_PRINT_NODES,
};

/// Most points one evaluation takes (`eval --x=LO:HI:N`): 10^7, about
/// 240 MB of inputs and results.
pub const MAX_POINTS: usize = 10_000_000;

/// A UTF-8 text file, without the byte-order mark some editors put first.
pub fn read_text(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The standard prelude plus the definitions in `defs`, if given.
pub fn load_library(defs: Option<&Path>) -> Result<Library> {
    let mut lib = Library::standard().clone();
    if let Some(path) = defs {
        lib.extend(&read_text(path)?, &path.display().to_string())?;
    }
    Ok(lib)
}

/// The formula lines of a file: (1-based line number, the whole line as
/// written), skipping blank lines and `#` comments. Diagnostics of a line
/// index into the line as written, so their columns match the file.
pub fn formula_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let t = line.trim();
        (!t.is_empty() && !t.starts_with('#')).then_some((i + 1, line))
    })
}

/// The evaluator `evaluate` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// The f64 reference evaluator.
    F64,
    /// The fused f32 CPU evaluator that mirrors the kernels.
    F32,
}

/// (f(x), f'(x)) at every point, in `precision` (f32 results widened).
pub fn evaluate(f: &Function, xs: &[f64], precision: Precision) -> (Vec<f64>, Vec<f64>) {
    if precision == Precision::F32 {
        let xs: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let mut outs = vec![Vec::new(), Vec::new()];
        Tape::new(&f.graph, &[f.f, f.df]).map_all(&xs, &mut outs);
        let widen = |v: &Vec<f32>| v.iter().map(|&a| a as f64).collect();
        return (widen(&outs[0]), widen(&outs[1]));
    }
    let mut ev = RefEval::new(&f.graph, &[f.f, f.df]);
    xs.iter()
        .map(|&x| {
            let v = ev.eval(&f.graph, x);
            (v[0], v[1])
        })
        .unzip()
}

/// Which kernels `kernel_source` emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Every dtype, forward and backward.
    All,
    One(Dtype, Direction),
}

/// The CUDA C module of `f`'s kernels.
pub fn kernel_source(f: &Function, which: Kernels, inline: bool, math: MathMode) -> String {
    let mut sel = Selection {
        math,
        ..Selection::default()
    };
    if let Kernels::One(dtype, dir) = which {
        sel.dtypes = vec![dtype];
        sel.directions = vec![dir];
    }
    if inline {
        sel.inlining = Inlining::Inline;
    }
    let mut m = Module::new(sel);
    m.add(f);
    m.source()
}

/// `root` of `g` in prefix and infix form, or a line saying how large it
/// is when it has more than `ir::MAX_PRINT_NODES` tree nodes.
pub fn printed(g: &Graph, root: Id) -> (String, String) {
    let too_big = || {
        format!(
            "<{} tree nodes ({} distinct): too large to print>",
            g.tree_size(root),
            g.dag_size(&[root])
        )
    };
    (
        to_prefix_limited(g, root, MAX_PRINT_NODES).unwrap_or_else(too_big),
        to_infix_limited(g, root, MAX_PRINT_NODES).unwrap_or_else(too_big),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_lines_keep_the_line_as_written() {
        let text = "sin(x)\n\n  # note\n   x +\r\ncos(x)";
        let got: Vec<(usize, &str)> = formula_lines(text).collect();
        assert_eq!(got, vec![(1, "sin(x)"), (4, "   x +"), (5, "cos(x)")]);
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let dir = std::env::temp_dir().join(format!("actforge-tasks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("defs.act");
        std::fs::write(&p, "\u{feff}hard(a) = clamp(a, -1, 1)\n").unwrap();
        let lib = load_library(Some(&p)).unwrap();
        let f = Function::new(&lib.parse("hard(x)").unwrap());
        assert_eq!(f.value(3.0), 1.0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn both_precisions_agree_on_easy_points() {
        let f = Function::new(&crate::ir::parse("sin(x)").unwrap());
        let xs = [0.0, 0.5, 1.0];
        let (y64, d64) = evaluate(&f, &xs, Precision::F64);
        let (y32, d32) = evaluate(&f, &xs, Precision::F32);
        for i in 0..3 {
            assert!((y64[i] - y32[i]).abs() < 1e-6 && (d64[i] - d32[i]).abs() < 1e-6);
        }
    }
}
