//! Subcommand implementations: check the flags, call one library function
//! (`tasks`, `bench`, `report`), print.
//!
//! Everything for standard output goes through `out`, and a failed write is
//! an [`Error::Io`] on [`STDOUT`] that `cli::main` turns into a quiet exit
//! when the reader went away (`| head`), never a panic. Notes and warnings
//! go to standard error through [`note`], which ignores a closed stderr.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::{Command, DefsArg};
use crate::bench::run::BenchSpec;
use crate::codegen::{Direction, Dtype, MathMode};
use crate::device::Device;
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::export::{export, ExportSpec};
use crate::ir::Library;
use crate::report::axis::grid;
use crate::report::number::{shortest, shortest_f32, significant};
use crate::report::plot::{plot, PlotSpec};
use crate::runtime::Arch;
use crate::simplify::hash_hex;
use crate::syntax::{escape_controls, Diagnostic};
use crate::tasks::{self, Kernels, Precision, MAX_POINTS};

use super::io::put;
pub use super::io::{note, stdout_error, STDOUT};

pub fn run(cmd: Command, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        Command::Simplify {
            formula,
            json,
            plot,
            defs,
        } => {
            let lib = library(&defs)?;
            simplify(out, &lib, &formula, json)?;
            match plot {
                Some(path) => plot_cmd(&lib, &formula, &path, "-5,5", 801),
                None => Ok(0),
            }
        }
        Command::Eval {
            formula,
            file,
            x,
            grad,
            json,
            precision,
            defs,
        } => {
            let xs = parse_points(&x)?;
            let lib = library(&defs)?;
            let opts = EvalOpts {
                xs: &xs,
                grad,
                json,
                precision: if precision == "f32" {
                    Precision::F32
                } else {
                    Precision::F64
                },
            };
            match (formula, file) {
                (Some(f), None) => eval_one(out, &lib, &f, &opts).map(|()| 0),
                (None, Some(path)) => eval_file(out, &lib, &path, &opts),
                _ => Err(Error::Usage("give a FORMULA or --file FILE".into())),
            }
        }
        Command::Plot {
            formula,
            out: path,
            range,
            samples,
            defs,
        } => plot_cmd(&library(&defs)?, &formula, &path, &range, samples as usize),
        Command::Prelude { defs } => prelude(out, &library(&defs)?),
        Command::Bleu(args) => super::bleu::run(out, &args),
        Command::Data { command } => super::data::run(out, command),
        Command::Train(args) => super::train::run(out, args),
        Command::BenchStep(args) => super::train::bench_step(out, args),
        Command::Search(args) => super::search::run(out, &args),
        Command::EvalCandidates(args) => super::eval_candidates::run(out, &args),
        Command::Report { dir } => {
            for page in crate::search::run::page::write_report(&dir)? {
                outln!(out, "{}", page.display());
            }
            Ok(0)
        }
        Command::Codegen {
            formula,
            dtype,
            bwd,
            all,
            inline,
            exact_math,
            defs,
        } => {
            let f = Function::new(&library(&defs)?.parse(&formula)?);
            let which = if all {
                Kernels::All
            } else {
                let dir = if bwd { Direction::Bwd } else { Direction::Fwd };
                Kernels::One(dtype_of(&dtype), dir)
            };
            let math = if exact_math {
                MathMode::Exact
            } else {
                MathMode::Approx
            };
            put(out, &tasks::kernel_source(&f, which, inline, math))?;
            Ok(0)
        }
        Command::Bench {
            formula,
            device,
            elems,
            dtype,
            iters,
            json,
            plot,
            defs,
        } => {
            // `cuda` is the GPU `CUDA_DEVICE_ORDINAL` names (default 0).
            let target = match Device::parse(&device)? {
                Device::Cuda(None) => Device::Cuda(Some(
                    std::env::var("CUDA_DEVICE_ORDINAL")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                )),
                d => d,
            };
            let (elems, iters) = (elems as usize, iters as usize);
            crate::bench::check_sizes(elems, iters)?;
            let f = Function::new(&library(&defs)?.parse(&formula)?);
            let spec = BenchSpec {
                formula: &formula,
                function: &f,
                target,
                elems,
                dtype: dtype_of(&dtype),
                iters,
            };
            bench_cmd(out, &spec, json, plot.as_deref())
        }
        Command::BenchCompile {
            arch,
            dtype,
            singles,
            batch,
            json,
            emit,
            sass,
        } => {
            if sass.sass {
                return super::sass::run(out, &sass, arch, json);
            }
            let spec = crate::bench::compile::CompileBench {
                arch: crate::export::check_arch(arch.0)?,
                dtype: dtype_of(&dtype),
                singles: singles as usize,
                batch: batch as usize,
                emit,
            };
            let v = crate::bench::compile::run(&spec)?;
            if json {
                outln!(out, "{v}");
            } else {
                put(out, &crate::bench::compile::describe(&v))?;
            }
            Ok(0)
        }
        Command::Export {
            formula,
            out: dir,
            arch,
            name,
            force,
            exact_math,
            defs,
        } => {
            let lib = library(&defs)?;
            let math = if exact_math {
                MathMode::Exact
            } else {
                MathMode::Approx
            };
            export_cmd(&lib, &formula, &dir, arch, name.as_deref(), force, math)
        }
    }
}

/// clap has checked the name.
fn dtype_of(name: &str) -> Dtype {
    Dtype::parse(name).expect("clap checked the dtype")
}

fn library(defs: &DefsArg) -> Result<Library> {
    tasks::load_library(defs.defs.as_deref())
}

fn simplify(out: &mut dyn Write, lib: &Library, formula: &str, as_json: bool) -> Result<()> {
    let f = Function::new(&lib.parse(formula)?);
    let fwd = f.forward();
    let (prefix, infix) = tasks::printed(&fwd.graph, fwd.root);
    let (_, deriv) = tasks::printed(&f.graph, f.df);
    if as_json {
        let v = json!({
            "input": formula,
            "simplified": prefix,
            "infix": infix,
            "nodes_before": f.nodes_before,
            "nodes_after": f.nodes_after,
            "hash": hash_hex(f.hash),
            "derivative": deriv,
            "stop": f.stop.as_str(),
            "rewrites": f.rewrites,
        });
        outln!(out, "{v}");
        return Ok(());
    }
    outln!(out, "input       {}", escape_controls(formula));
    outln!(out, "simplified  {prefix}");
    outln!(out, "infix       {infix}");
    outln!(out, "derivative  {deriv}");
    outln!(
        out,
        "nodes       {} -> {} (DAG nodes of intrinsics)",
        f.nodes_before,
        f.nodes_after
    );
    outln!(out, "hash        {}", hash_hex(f.hash));
    outln!(
        out,
        "stop        {} after {} rewrites",
        f.stop.as_str(),
        f.rewrites
    );
    Ok(())
}

struct EvalOpts<'a> {
    xs: &'a [f64],
    grad: bool,
    json: bool,
    precision: Precision,
}

/// `LO:HI:N` (an even grid of N points, LO ≤ HI, N ≤ [`MAX_POINTS`]) or
/// `a,b,c`; every number finite.
fn parse_points(s: &str) -> Result<Vec<f64>> {
    let bad = |what: &str| {
        Error::Usage(format!(
            "--x: {what} in `{s}` (use --x=-2,-0.5,0,1.5 or --x=-5:5:11)"
        ))
    };
    let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    if !s.contains(':') {
        return s
            .split(',')
            .map(|t| num(t).ok_or_else(|| bad(&format!("`{}` is not a finite number", t.trim()))))
            .collect();
    }
    let parts: Vec<&str> = s.split(':').collect();
    let [lo, hi, n] = parts[..] else {
        return Err(bad("a grid needs LO:HI:N"));
    };
    let lo = num(lo).ok_or_else(|| bad("LO is not a finite number"))?;
    let hi = num(hi).ok_or_else(|| bad("HI is not a finite number"))?;
    if lo > hi {
        return Err(bad("LO is above HI"));
    }
    let n: usize = n
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| (1..=MAX_POINTS as u64).contains(&n))
        .ok_or_else(|| bad(&format!("N must be an integer from 1 to {MAX_POINTS}")))?
        as usize;
    Ok(crate::report::axis::grid(lo, hi, n).collect())
}

fn json_nums(v: &[f64]) -> Value {
    Value::Array(
        v.iter()
            .map(|&a| serde_json::Number::from_f64(a).map_or(Value::Null, Value::Number))
            .collect(),
    )
}

fn eval_json(y: &[f64], dy: &[f64], grad: bool, line: Option<usize>) -> Value {
    let mut obj = serde_json::Map::new();
    if let Some(l) = line {
        obj.insert("line".into(), json!(l));
    }
    obj.insert("y".into(), json_nums(y));
    if grad {
        obj.insert("dy".into(), json_nums(dy));
    }
    Value::Object(obj)
}

/// A value as text: every digit needed to read it back in its precision.
fn num(v: f64, precision: Precision) -> String {
    match precision {
        Precision::F64 => shortest(v),
        Precision::F32 => shortest_f32(v as f32),
    }
}

fn print_table(out: &mut dyn Write, opts: &EvalOpts, y: &[f64], dy: &[f64]) -> Result<()> {
    let p = opts.precision;
    if opts.grad {
        outln!(out, "{:>14}  {:>24}  {:>24}", "x", "f(x)", "f'(x)");
    } else {
        outln!(out, "{:>14}  {:>24}", "x", "f(x)");
    }
    for (i, &x) in opts.xs.iter().enumerate() {
        let x = shortest(x);
        if opts.grad {
            outln!(out, "{x:>14}  {:>24}  {:>24}", num(y[i], p), num(dy[i], p));
        } else {
            outln!(out, "{x:>14}  {:>24}", num(y[i], p));
        }
    }
    Ok(())
}

fn eval_one(out: &mut dyn Write, lib: &Library, formula: &str, opts: &EvalOpts) -> Result<()> {
    let f = Function::new(&lib.parse(formula)?);
    let (y, dy) = tasks::evaluate(&f, opts.xs, opts.precision);
    if opts.json {
        outln!(out, "{}", eval_json(&y, &dy, opts.grad, None));
        return Ok(());
    }
    print_table(out, opts, &y, &dy)
}

fn eval_file(out: &mut dyn Write, lib: &Library, path: &Path, opts: &EvalOpts) -> Result<i32> {
    let name = path.display().to_string();
    let text = tasks::read_text(path)?;
    let mut failed = 0;
    for (lineno, line) in tasks::formula_lines(&text) {
        match lib.parse(line) {
            Ok(e) => {
                let f = Function::new(&e);
                let (y, dy) = tasks::evaluate(&f, opts.xs, opts.precision);
                if opts.json {
                    outln!(out, "{}", eval_json(&y, &dy, opts.grad, Some(lineno)));
                } else {
                    outln!(out, "# {name}:{lineno}: {}", escape_controls(line.trim()));
                    print_table(out, opts, &y, &dy)?;
                }
            }
            Err(d) => {
                failed += 1;
                let d: Diagnostic = d.with_source(line, &name).at_line(lineno);
                note(d.render());
                if opts.json {
                    let msg = escape_controls(&d.message);
                    outln!(out, "{}", json!({"line": lineno, "error": msg}));
                }
            }
        }
    }
    if failed > 0 {
        note(format!(
            "error: {failed} formula line(s) in {name} could not be parsed"
        ));
        return Ok(1);
    }
    Ok(0)
}

fn plot_cmd(lib: &Library, formula: &str, out: &Path, range: &str, samples: usize) -> Result<i32> {
    let (lo, hi) = parse_range(range)?;
    let spec = PlotSpec {
        title: formula,
        lo,
        hi,
        samples,
    };
    crate::report::plot::check_spec(&spec)?;
    let f = Function::new(&lib.parse(formula)?);
    let outcome = plot(&f.sample(grid(lo, hi, samples)), &spec, out)?;
    if outcome.missing_font {
        note("warning: no TrueType font found, so the plot has no labels; set ACTFORGE_FONT=/path/to/font.ttf");
    }
    if outcome.nonfinite > 0 {
        note(format!(
            "note: {} of {samples} sample points are not finite and are left as gaps",
            outcome.nonfinite
        ));
    }
    note(format!("wrote {}", out.display()));
    Ok(0)
}

fn bench_cmd(
    out: &mut dyn Write,
    spec: &BenchSpec,
    as_json: bool,
    chart: Option<&Path>,
) -> Result<i32> {
    let report = crate::bench::run::run(spec)?;
    if let Some(path) = chart {
        let title = format!(
            "{} ({}, {} elements)",
            spec.formula,
            spec.dtype.name(),
            spec.elems
        );
        let bars: Vec<_> = report.rows.iter().map(|r| r.bar()).collect();
        crate::report::plot::bar_chart(&bars, &title, path)?;
        note(format!("wrote {}", path.display()));
    }
    if as_json {
        outln!(out, "{}", report.json(spec));
    } else {
        put(out, &report.text(spec))?;
    }
    for n in &report.notes {
        note(format!("note: {n}"));
    }
    for w in &report.warnings {
        note(format!("warning: {w}"));
    }
    Ok(0)
}

fn export_cmd(
    lib: &Library,
    formula: &str,
    out: &Path,
    arch: Arch,
    name: Option<&str>,
    replace: bool,
    math: MathMode,
) -> Result<i32> {
    let arch = arch.0;
    let f = Function::new(&lib.parse(formula)?);
    let spec = ExportSpec {
        formula,
        function: &f,
        out,
        name,
        arch,
        replace,
        math,
    };
    let report = export(&spec)?;
    for p in &report.files {
        note(format!("wrote {}", p.display()));
    }
    if let Some(ms) = report.compile_ms {
        note(format!(
            "NVRTC compiled the CUBIN for sm_{arch} in {} ms",
            significant(ms, 3)
        ));
    }
    if let Some(why) = &report.no_binaries {
        note(format!("warning: no .ptx/.cubin written:\n{why}"));
    }
    Ok(0)
}

/// `LO,HI`, finite, LO < HI.
fn parse_range(s: &str) -> Result<(f64, f64)> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "--range: {why}: expected LO,HI with finite LO < HI, e.g. --range=-5,5; got `{}`",
            escape_controls(s)
        ))
    };
    let parts: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("not a number"))?;
    match parts[..] {
        [lo, hi] if !(lo.is_finite() && hi.is_finite()) => Err(bad("not finite")),
        [lo, hi] if lo < hi => Ok((lo, hi)),
        [_, _] => Err(bad("LO is not below HI")),
        _ => Err(bad("not two numbers")),
    }
}

fn prelude(out: &mut dyn Write, lib: &Library) -> Result<i32> {
    for d in lib.definitions() {
        let text = &d.source[d.def.name_span.start..d.def.body.span.end];
        outln!(out, "{text}    # {}", escape_controls(&d.origin));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_lists_and_grids() {
        assert_eq!(
            parse_points("-2,-0.5,0,1.5").unwrap(),
            vec![-2.0, -0.5, 0.0, 1.5]
        );
        assert_eq!(parse_points("-1:1:3").unwrap(), vec![-1.0, 0.0, 1.0]);
        assert!(parse_points("1,,2").is_err());
        assert!(parse_points("0:1:0").is_err());
        assert!(parse_points("nan").is_err());
    }

    #[test]
    fn grids_of_any_finite_range_are_finite_and_bounded() {
        assert_eq!(
            parse_points("-1e308:1e308:3").unwrap(),
            vec![-1e308, 0.0, 1e308]
        );
        let g = parse_points("-1.7976931348623157e308:1.7976931348623157e308:101").unwrap();
        assert!(g.iter().all(|v| v.is_finite()) && g.windows(2).all(|w| w[0] < w[1]));
        for bad in [
            "1:0:3",
            "0:1:100000000000",
            "0:1:18446744073709551616",
            "0:inf:3",
            "-inf:0:3",
            "nan:1:2",
            "0:1:-3",
            &format!("0:1:{}", MAX_POINTS + 1),
        ] {
            let e = parse_points(bad).unwrap_err().to_string();
            assert!(e.starts_with("error: --x: "), "{bad}: {e}");
        }
        assert!(parse_points("0:1:100000000000")
            .unwrap_err()
            .to_string()
            .contains(&MAX_POINTS.to_string()));
        assert_eq!(
            parse_points(&format!("0:1:{MAX_POINTS}")).unwrap().len(),
            MAX_POINTS
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("-5,5").unwrap(), (-5.0, 5.0));
        assert_eq!(parse_range("-1e308,1e308").unwrap(), (-1e308, 1e308));
        for bad in [
            "5,-5", "1,1", "1", "-inf,0", "0,1e309", "nan,1", "a,b", "1,2,3",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_print_with_every_digit() {
        assert_eq!(num(1.5, Precision::F64), "1.5");
        assert_eq!(num(2.0, Precision::F64), "2");
        assert_eq!(num(-0.0, Precision::F64), "0");
        assert_eq!(num(f64::NAN, Precision::F64), "nan");
        assert_eq!(num(f64::NEG_INFINITY, Precision::F64), "-inf");
        assert_eq!(num((-30f64).exp(), Precision::F64), "9.357622968840175e-14");
        assert_eq!(num(1e-300, Precision::F64), "1e-300");
        assert_eq!(num(0.1 + 0.2, Precision::F64), "0.30000000000000004");
        assert_eq!(num(1f32.sin() as f64, Precision::F32), "0.84147096");
    }
}
