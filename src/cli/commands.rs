//! Subcommand implementations: argument checking and printing only.

use std::path::Path;

use serde_json::{json, Value};

use super::{Command, DefsArg};
use crate::codegen::{Direction, Dtype, Inlining, MathMode, Module, Selection};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::{to_infix_limited, to_prefix_limited, Library, RefEval, Tape, MAX_PRINT_NODES};
use crate::report::export::{export, ExportSpec};
use crate::report::plot::{plot, PlotSpec};
use crate::simplify::hash_hex;
use crate::syntax::Diagnostic;

pub fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Simplify {
            formula,
            json,
            plot,
            defs,
        } => {
            let code = simplify(&formula, json, &defs)?;
            match plot {
                Some(out) => plot_cmd(&library(&defs)?, &formula, &out, "-5,5", 801),
                None => Ok(code),
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
                f32: precision == "f32",
            };
            match (formula, file) {
                (Some(f), None) => eval_one(&lib, &f, &opts).map(|()| 0),
                (None, Some(path)) => eval_file(&lib, &path, &opts),
                _ => Err(Error::Usage("give a FORMULA or --file FILE".into())),
            }
        }
        Command::Plot {
            formula,
            out,
            range,
            samples,
            defs,
        } => plot_cmd(&library(&defs)?, &formula, &out, &range, samples),
        Command::Prelude { defs } => prelude(&library(&defs)?),
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
            let mut sel = Selection::default();
            if !all {
                sel.dtypes = vec![Dtype::parse(&dtype).expect("clap checked the dtype")];
                sel.directions = vec![if bwd { Direction::Bwd } else { Direction::Fwd }];
            }
            if inline {
                sel.inlining = Inlining::Inline;
            }
            if exact_math {
                sel.math = MathMode::Exact;
            }
            let mut m = Module::new(sel);
            m.add(&f);
            print!("{}", m.source());
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
            let f = Function::new(&library(&defs)?.parse(&formula)?);
            bench_cmd(&BenchArgs {
                formula: &formula,
                function: &f,
                device: &device,
                elems,
                dtype: Dtype::parse(&dtype).expect("clap checked the dtype"),
                iters,
                json,
                plot: plot.as_deref(),
            })
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
                return super::sass::run(&sass, &arch, json);
            }
            let spec = crate::bench::compile::CompileBench {
                arch: parse_arch(&arch)?,
                dtype: Dtype::parse(&dtype).expect("clap checked the dtype"),
                singles: singles.max(1),
                batch: batch.max(1),
                emit,
            };
            let v = crate::bench::compile::run(&spec)?;
            if json {
                println!("{v}");
            } else {
                print!("{}", crate::bench::compile::describe(&v));
            }
            Ok(0)
        }
        Command::Export {
            formula,
            out,
            arch,
            name,
            exact_math,
            defs,
        } => {
            let math = if exact_math {
                MathMode::Exact
            } else {
                MathMode::Approx
            };
            export_cmd(
                &library(&defs)?,
                &formula,
                &out,
                &arch,
                name.as_deref(),
                math,
            )
        }
    }
}

/// The standard prelude plus the user's definitions file, if any.
fn library(defs: &DefsArg) -> Result<Library> {
    let mut lib = Library::standard().clone();
    if let Some(path) = &defs.defs {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        lib.extend(&text, &path.display().to_string())?;
    }
    Ok(lib)
}

fn simplify(formula: &str, as_json: bool, defs: &DefsArg) -> Result<i32> {
    let lib = library(defs)?;
    let e = lib.parse(formula)?;
    let f = Function::new(&e);
    let fwd = f.forward();
    let too_big = |g: &crate::ir::Graph, id| {
        format!(
            "<{} tree nodes ({} distinct): too large to print>",
            g.tree_size(id),
            g.dag_size(&[id])
        )
    };
    let prefix = to_prefix_limited(&fwd.graph, fwd.root, MAX_PRINT_NODES)
        .unwrap_or_else(|| too_big(&fwd.graph, fwd.root));
    let infix = to_infix_limited(&fwd.graph, fwd.root, MAX_PRINT_NODES)
        .unwrap_or_else(|| too_big(&fwd.graph, fwd.root));
    let deriv = to_infix_limited(&f.graph, f.df, MAX_PRINT_NODES)
        .unwrap_or_else(|| too_big(&f.graph, f.df));
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
        println!("{v}");
    } else {
        println!("input       {formula}");
        println!("simplified  {prefix}");
        println!("infix       {infix}");
        println!("derivative  {deriv}");
        println!(
            "nodes       {} -> {} (DAG nodes of intrinsics)",
            f.nodes_before, f.nodes_after
        );
        println!("hash        {}", hash_hex(f.hash));
        println!(
            "stop        {} after {} rewrites",
            f.stop.as_str(),
            f.rewrites
        );
    }
    Ok(0)
}

struct EvalOpts<'a> {
    xs: &'a [f64],
    grad: bool,
    json: bool,
    f32: bool,
}

/// `LO:HI:N` (an even grid of N points) or `a,b,c`.
fn parse_points(s: &str) -> Result<Vec<f64>> {
    let bad = |what: &str| {
        Error::Usage(format!(
            "--x: {what} in `{s}` (use --x=-2,-0.5,0,1.5 or --x=-5:5:11)"
        ))
    };
    let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        let [lo, hi, n] = parts[..] else {
            return Err(bad("a grid needs LO:HI:N"));
        };
        let (lo, hi) = (
            num(lo).ok_or_else(|| bad("bad LO"))?,
            num(hi).ok_or_else(|| bad("bad HI"))?,
        );
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| bad("N must be a positive integer"))?;
        return Ok((0..n)
            .map(|i| {
                if n == 1 {
                    lo
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                }
            })
            .collect());
    }
    s.split(',')
        .map(|t| num(t).ok_or_else(|| bad(&format!("`{}` is not a finite number", t.trim()))))
        .collect()
}

/// (f(x), f'(x)) at every point, in the requested precision.
fn evaluate(f: &Function, opts: &EvalOpts) -> (Vec<f64>, Vec<f64>) {
    if opts.f32 {
        let xs: Vec<f32> = opts.xs.iter().map(|&v| v as f32).collect();
        let mut outs = vec![Vec::new(), Vec::new()];
        Tape::new(&f.graph, &[f.f, f.df]).map_all(&xs, &mut outs);
        let widen = |v: &Vec<f32>| v.iter().map(|&a| a as f64).collect();
        return (widen(&outs[0]), widen(&outs[1]));
    }
    let mut ev = RefEval::new(&f.graph, &[f.f, f.df]);
    opts.xs
        .iter()
        .map(|&x| {
            let v = ev.eval(&f.graph, x);
            (v[0], v[1])
        })
        .unzip()
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

fn print_table(xs: &[f64], y: &[f64], dy: &[f64], grad: bool) {
    if grad {
        println!("{:>14}  {:>16}  {:>16}", "x", "f(x)", "f'(x)");
    } else {
        println!("{:>14}  {:>16}", "x", "f(x)");
    }
    for i in 0..xs.len() {
        if grad {
            println!("{:>14}  {:>16}  {:>16}", num(xs[i]), num(y[i]), num(dy[i]));
        } else {
            println!("{:>14}  {:>16}", num(xs[i]), num(y[i]));
        }
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.9}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.into()
        }
    } else {
        format!("{v}").to_lowercase()
    }
}

fn eval_one(lib: &Library, formula: &str, opts: &EvalOpts) -> Result<()> {
    let f = Function::new(&lib.parse(formula)?);
    let (y, dy) = evaluate(&f, opts);
    if opts.json {
        println!("{}", eval_json(&y, &dy, opts.grad, None));
    } else {
        print_table(opts.xs, &y, &dy, opts.grad);
    }
    Ok(())
}

fn eval_file(lib: &Library, path: &Path, opts: &EvalOpts) -> Result<i32> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(&name, e))?;
    let mut failed = 0;
    for (i, line) in text.lines().enumerate() {
        let formula = line.trim();
        if formula.is_empty() || formula.starts_with('#') {
            continue;
        }
        let lineno = i + 1;
        match lib.parse(formula) {
            Ok(e) => {
                let f = Function::new(&e);
                let (y, dy) = evaluate(&f, opts);
                if opts.json {
                    println!("{}", eval_json(&y, &dy, opts.grad, Some(lineno)));
                } else {
                    println!("# {name}:{lineno}: {formula}");
                    print_table(opts.xs, &y, &dy, opts.grad);
                }
            }
            Err(d) => {
                failed += 1;
                let d: Diagnostic = d.with_source(formula, &name).at_line(lineno);
                eprintln!("{}", d.render());
                if opts.json {
                    println!("{}", json!({"line": lineno, "error": d.message}));
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} formula line(s) in {name} could not be parsed");
        return Ok(1);
    }
    Ok(0)
}

fn plot_cmd(lib: &Library, formula: &str, out: &Path, range: &str, samples: usize) -> Result<i32> {
    let (lo, hi) = parse_range(range)?;
    let f = Function::new(&lib.parse(formula)?);

    let spec = PlotSpec {
        title: formula,
        lo,
        hi,
        samples,
    };
    let outcome = plot(&f, &spec, out)?;
    if outcome.missing_font {
        eprintln!("warning: no TrueType font found, so the plot has no labels; set ACTFORGE_FONT=/path/to/font.ttf");
    }
    if outcome.nonfinite > 0 {
        eprintln!(
            "note: {} of {samples} sample points are not finite and are left as gaps",
            outcome.nonfinite
        );
    }
    eprintln!("wrote {}", out.display());
    Ok(0)
}

/// What `actforge bench` measures.
struct BenchArgs<'a> {
    formula: &'a str,
    function: &'a Function,
    device: &'a str,
    elems: usize,
    dtype: Dtype,
    iters: usize,
    json: bool,
    plot: Option<&'a Path>,
}

fn bench_cmd(a: &BenchArgs) -> Result<i32> {
    use crate::bench::{rows_json, speedups, table, Variant};
    if a.elems == 0 {
        return Err(Error::Usage("--elems must be positive".into()));
    }
    let candle = |device: &candle_core::Device| {
        crate::bench::candle::run(&crate::bench::candle::CandleBench {
            formula: a.formula,
            function: a.function,
            device,
            dtype: a.dtype,
            elems: a.elems,
            iters: a.iters,
        })
    };
    let mut notes = Vec::new();
    let (rows, where_) = match a.device {
        "cuda" => {
            let ordinal = std::env::var("CUDA_DEVICE_ORDINAL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let gpu = crate::runtime::device::Gpu::open(ordinal)?;
            let spec = crate::bench::kernels::KernelBench {
                function: a.function,
                dtype: a.dtype,
                elems: a.elems,
                iters: a.iters.max(1),
            };
            let mut rows = crate::bench::kernels::run(&gpu, &spec)?;
            if cfg!(feature = "cuda") {
                let dev = candle_core::Device::new_cuda(ordinal)
                    .map_err(|e| Error::Cuda(format!("candle: {e}")))?;
                rows.extend(candle(&dev)?);
            } else {
                notes.push("this binary was built without the `cuda` feature: the candle-level rows (fused op, composed ops, built-in GELU) need `cargo build --release --features cuda`".to_string());
            }
            (
                rows,
                format!("{} (sm_{}, {} SMs)", gpu.name, gpu.arch, gpu.sm_count),
            )
        }
        _ => (
            candle(&candle_core::Device::Cpu)?,
            format!(
                "CPU ({} threads)",
                candle_core::utils::barrier_pool().n_workers() + 1
            ),
        ),
    };
    let vs = speedups(&rows, Variant::Fused, Variant::Composed);
    let vb = speedups(&rows, Variant::Fused, Variant::Builtin);
    let vk = speedups(&rows, Variant::FusedKernel, Variant::ComposedKernels);
    if let Some(out) = a.plot {
        crate::report::plot::bar_chart(
            &rows,
            &format!("{} ({}, {} elements)", a.formula, a.dtype.name(), a.elems),
            out,
        )?;
        eprintln!("wrote {}", out.display());
    }
    if a.json {
        let mut v = json!({
            "device": where_,
            "formula": a.formula,
            "dtype": a.dtype.name(),
            "elems": a.elems,
            "hash": hash_hex(a.function.hash),
            "rows": rows_json(&rows),
            "speedup_vs_composed": vs,
            "speedup_vs_builtin": vb,
        });
        if a.device == "cuda" {
            v["kernel_speedup_vs_composed_kernels"] = vk;
        }
        println!("{v}");
    } else {
        println!(
            "{where_}, {}, {} elements: {}",
            a.dtype.name(),
            a.elems,
            a.formula
        );
        print!("{}", table(&rows));
        let g = |s: &serde_json::Value, k: &str| {
            s[k].as_f64().map_or("-".into(), |v| format!("{v:.2}x"))
        };
        for (name, s) in [("composed", &vs), ("built-in gelu", &vb)] {
            println!(
                "fused speedup vs {name}: fwd {}, bwd {}, fwd+bwd {}",
                g(s, "fwd"),
                g(s, "bwd"),
                g(s, "fwdbwd")
            );
        }
        if a.device == "cuda" {
            println!(
                "fused kernels vs one kernel per op: fwd {}, bwd {}, fwd+bwd {}",
                g(&vk, "fwd"),
                g(&vk, "bwd"),
                g(&vk, "fwdbwd")
            );
        }
    }
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(0)
}

/// `sm_90` or `90`.
pub fn parse_arch(s: &str) -> Result<u32> {
    let digits = s
        .trim()
        .trim_start_matches("sm_")
        .trim_start_matches("compute_");
    digits
        .parse::<u32>()
        .ok()
        .filter(|&a| (50..=200).contains(&a))
        .ok_or_else(|| {
            Error::Usage(format!(
                "--arch: expected an SM architecture such as sm_90, got `{s}`"
            ))
        })
}

fn export_cmd(
    lib: &Library,
    formula: &str,
    out: &Path,
    arch: &str,
    name: Option<&str>,
    math: MathMode,
) -> Result<i32> {
    let arch = parse_arch(arch)?;
    let f = Function::new(&lib.parse(formula)?);
    let spec = ExportSpec {
        formula,
        function: &f,
        out,
        name,
        arch,
        math,
    };
    let report = export(&spec)?;
    for p in &report.files {
        eprintln!("wrote {}", p.display());
    }
    if let Some(ms) = report.compile_ms {
        eprintln!("NVRTC compiled the CUBIN for sm_{arch} in {ms:.0} ms");
    }
    if let Some(why) = &report.no_binaries {
        eprintln!("warning: no .ptx/.cubin written:\n{why}");
    }
    Ok(0)
}

/// `LO,HI`.
fn parse_range(s: &str) -> Result<(f64, f64)> {
    let bad = || {
        Error::Usage(format!(
            "--range: expected LO,HI with LO < HI, e.g. --range=-5,5; got `{s}`"
        ))
    };
    let parts: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    match parts[..] {
        [lo, hi] if lo < hi && lo.is_finite() && hi.is_finite() => Ok((lo, hi)),
        _ => Err(bad()),
    }
}

fn prelude(lib: &Library) -> Result<i32> {
    for d in lib.definitions() {
        let text = &d.source[d.def.name_span.start..d.def.body.span.end];
        println!("{text}    # {}", d.origin);
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
    fn ranges() {
        assert_eq!(parse_range("-5,5").unwrap(), (-5.0, 5.0));
        assert!(parse_range("5,-5").is_err());
        assert!(parse_range("1").is_err());
    }

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(f64::NAN), "nan");
        assert_eq!(num(f64::NEG_INFINITY), "-inf");
    }
}
