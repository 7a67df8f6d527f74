//! `actforge bench-compile --sass`: the SASS roofline report, and the
//! budget check CI runs. Argument handling and printing only; the
//! measurement is `bench::sass`.

use std::io::Write;

use super::io::{note, put};
use super::SassArgs;
use crate::bench::sass::{
    budget_json, check_budget, measure, measure_source, report_json, report_table, SassSpec,
    DEFAULT_FORMULAS, H200,
};
use crate::codegen::{Inlining, MathMode};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::Library;
use crate::runtime::Arch;

pub fn run(out: &mut dyn Write, args: &SassArgs, arch: Arch, json: bool) -> Result<i32> {
    if let Some(path) = &args.source {
        return run_source(out, path, arch.0, json);
    }
    let lib = Library::standard();
    let sources: Vec<(String, String)> = if args.formulas.is_empty() {
        DEFAULT_FORMULAS
            .iter()
            .map(|(l, f)| (l.to_string(), f.to_string()))
            .collect()
    } else {
        args.formulas
            .iter()
            .map(|f| (f.clone(), f.clone()))
            .collect()
    };
    let mut formulas = Vec::new();
    for (label, src) in sources {
        formulas.push((label, Function::new(&lib.parse(&src)?)));
    }
    let spec = SassSpec {
        formulas: &formulas,
        arch: arch.0,
        math: if args.exact_math {
            MathMode::Exact
        } else {
            MathMode::Approx
        },
        inlining: match (args.inline, args.call) {
            (true, _) => Inlining::Inline,
            (_, true) => Inlining::Call,
            _ => Inlining::Auto,
        },
    };
    let (reports, times) = measure(&spec)?;
    if json {
        outln!(out, "{}", report_json(&spec, &reports, &times, &H200));
    } else {
        outln!(
            out,
            "SASS main path per element, sm_{}, {} math, inlining {}, per-formula kernels (NVRTC {:.0} ms in all)\n",
            spec.arch,
            spec.math.name(),
            spec.inlining.name(),
            times.iter().sum::<f64>()
        );
        put(out, &report_table(&reports, &H200))?;
    }
    if let Some(path) = &args.write_budget {
        let text = serde_json::to_string_pretty(&budget_json(&reports)).expect("json") + "\n";
        std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
        note(format!("wrote {}", path.display()));
    }
    let Some(path) = &args.check else {
        return Ok(0);
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let committed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: not a budget file: {e}", path.display())))?;
    let problems = check_budget(&reports, &committed);
    for p in &problems {
        note(format!("SASS budget exceeded: {p}"));
    }
    if problems.is_empty() {
        note(format!(
            "every kernel is within the committed SASS budget ({})",
            path.display()
        ));
        Ok(0)
    } else {
        Ok(1)
    }
}

/// `--source FILE`: the per-formula kernels of a generated module as it is.
fn run_source(out: &mut dyn Write, path: &std::path::Path, arch: u32, json: bool) -> Result<i32> {
    let src =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("module.cu");
    let (reports, ms) = measure_source(&src, name, arch, &Default::default())?;
    if reports.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no per-formula kernels (act_<hash>_<dir>_<dtype>) in it",
            path.display()
        )));
    }
    if json {
        let rows: Vec<_> = reports.iter().map(|r| r.to_json(&H200)).collect();
        outln!(
            out,
            "{}",
            serde_json::json!({"arch": format!("sm_{arch}"), "source": path.display().to_string(), "compile_ms": [ms], "kernels": rows})
        );
    } else {
        outln!(
            out,
            "SASS main path per element, sm_{arch}, {} as written (NVRTC {ms:.0} ms)\n",
            path.display()
        );
        put(out, &report_table(&reports, &H200))?;
    }
    Ok(0)
}
