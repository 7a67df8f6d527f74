//! NVRTC compile-time benchmark: cold compiles of one formula, one module
//! for many formulas, and disk-cache hits. Needs NVRTC, not a GPU.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::codegen::{Dtype, Layout, Module, Selection};
use crate::diff::Function;
use crate::error::{Error, Result, Setting};
use crate::gp::{PrimitiveSet, Tree};
use crate::ir::parse;
use crate::report::number::significant;
use crate::runtime::nvrtc::{compile, CompileOptions};
use crate::runtime::{KernelCache, Lookup};

use super::Stats;

/// Most formulas compiled one by one.
pub const MAX_SINGLES: usize = 1000;
/// Most formulas in the batched module.
pub const MAX_BATCH: usize = 4096;

/// Random GP formulas from the seed set (fixed seed: reproducible).
pub fn sample_formulas(n: usize, seed: u64) -> Vec<Function> {
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Function> = Vec::new();
    while out.len() < n {
        let f = Function::new(
            &parse(&Tree::ramped(&mut rng, &set, 2, 6).to_formula(&set))
                .expect("generated formulas parse"),
        );
        if out.iter().all(|g| g.hash != f.hash) {
            out.push(f);
        }
    }
    out
}

fn module(fs: &[Function], dtype: Dtype, layout: Layout) -> Module {
    let mut m = Module::new(Selection {
        dtypes: vec![dtype],
        layout,
        ..Selection::default()
    });
    for f in fs {
        m.add(f);
    }
    m
}

pub struct CompileBench {
    pub arch: u32,
    pub dtype: Dtype,
    /// Formulas compiled one by one (cold).
    pub singles: usize,
    /// Formulas in the batched module.
    pub batch: usize,
    /// Where to write the sources (`single.cu`, `module.cu`), if anywhere.
    pub emit: Option<std::path::PathBuf>,
}

/// Measure; returns a JSON object with the figures.
pub fn run(spec: &CompileBench) -> Result<Value> {
    if !(1..=MAX_SINGLES).contains(&spec.singles) || !(1..=MAX_BATCH).contains(&spec.batch) {
        return Err(Error::setting(format!(
            "{} {} {} {}: take 1 to {MAX_SINGLES} single formulas and 1 to {MAX_BATCH} in the batch",
            Setting::Singles,
            spec.singles,
            Setting::Batch,
            spec.batch
        )));
    }
    let opts = CompileOptions::cubin(spec.arch);
    let fs = sample_formulas(spec.singles.max(spec.batch), 2026);
    let mut singles = Vec::new();
    for f in &fs[..spec.singles] {
        let m = module(std::slice::from_ref(f), spec.dtype, Layout::PerFormula);
        singles.push(compile(&m.source(), "one.cu", &opts)?.elapsed.as_secs_f64() * 1e3);
    }
    let m = module(&fs[..spec.batch], spec.dtype, Layout::PerFormula);
    let dm = module(&fs[..spec.batch], spec.dtype, Layout::Dispatch);
    if let Some(dir) = &spec.emit {
        let write = |name: &str, src: String| {
            let path = dir.join(name);
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&path, src))
                .map_err(|e| Error::io(path.display().to_string(), e))
        };
        write(
            "single.cu",
            module(&fs[..1], spec.dtype, Layout::PerFormula).source(),
        )?;
        write("module.cu", m.source())?;
        write("dispatch.cu", dm.source())?;
    }
    let batch = compile(&m.source(), "batch.cu", &opts)?
        .elapsed
        .as_secs_f64()
        * 1e3;
    let per_formula = batch / m.len() as f64;
    // The same formulas as one dispatch module (shared math, one kernel
    // per direction).
    let dispatch = compile(&dm.source(), "dispatch.cu", &opts)?
        .elapsed
        .as_secs_f64()
        * 1e3;
    let dispatch_per_formula = dispatch / dm.len() as f64;

    // Disk-cache hits: a fresh cache each time, so memory cannot answer.
    let dir = std::env::temp_dir().join(format!("actforge-compile-bench-{}", std::process::id()));
    let src = module(&fs[..1], spec.dtype, Layout::PerFormula).source();
    KernelCache::new(Some(dir.clone())).get_or_compile(&src, "hit.cu", &opts)?;
    let mut hits = Vec::new();
    for _ in 0..20 {
        let c = KernelCache::new(Some(dir.clone()));
        let t = Instant::now();
        let (_, how) = c.get_or_compile(&src, "hit.cu", &opts)?;
        let e = t.elapsed();
        if how == Lookup::Disk {
            hits.push(e.as_secs_f64() * 1e3);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let cold = Stats::of(&singles).expect("at least one formula");
    let single_median = cold.median;
    let hit = Stats::of(&hits);
    Ok(json!({
        "arch": format!("sm_{}", spec.arch),
        "dtype": spec.dtype.name(),
        "kernels_per_formula": 2,
        "cold_compile_ms": {"median": single_median, "min": cold.min, "max": cold.max, "formulas": spec.singles},
        "module": {"formulas": m.len(), "total_ms": batch, "per_formula_ms": per_formula, "speedup_per_formula": single_median / per_formula},
        "dispatch_module": {"formulas": dm.len(), "total_ms": dispatch, "per_formula_ms": dispatch_per_formula, "speedup_per_formula": single_median / dispatch_per_formula},
        "disk_cache_hit_ms": {"median": hit.map(|h| h.median), "min": hit.map(|h| h.min), "max": hit.map(|h| h.max), "hits": hits.len()},
    }))
}

pub fn describe(v: &Value) -> String {
    let g = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| significant(x, 3))
    };
    format!(
        "NVRTC {} {} fwd+bwd\n  cold compile, one formula: median {} ms (min {}, max {}, {} formulas)\n  one module of {} formulas: {} ms, {} ms per formula ({}x faster per formula)\n  one dispatch module of the same: {} ms, {} ms per formula ({}x faster per formula)\n  disk-cache hit: median {} ms (min {}, max {})\n",
        v["arch"].as_str().unwrap_or(""),
        v["dtype"].as_str().unwrap_or(""),
        g("/cold_compile_ms/median"),
        g("/cold_compile_ms/min"),
        g("/cold_compile_ms/max"),
        v["cold_compile_ms"]["formulas"],
        v["module"]["formulas"],
        g("/module/total_ms"),
        g("/module/per_formula_ms"),
        g("/module/speedup_per_formula"),
        g("/dispatch_module/total_ms"),
        g("/dispatch_module/per_formula_ms"),
        g("/dispatch_module/speedup_per_formula"),
        g("/disk_cache_hit_ms/median"),
        g("/disk_cache_hit_ms/min"),
        g("/disk_cache_hit_ms/max"),
    )
}
