//! Real NVRTC and ptxas on the generated kernels (no GPU needed).
//!
//! Without libnvrtc these tests print why and pass; with
//! `ACTFORGE_REQUIRE_NVRTC=1` (set in CI) absence is a failure, so CI can
//! never pass vacuously.

use std::sync::Arc;

use actforge::codegen::{Direction, Dtype, Layout, MathMode, Module, Selection};
use actforge::diff::Function;
use actforge::error::Error;
use actforge::gp::{PrimitiveSet, Tree};
use actforge::ir::{parse, Library};
use actforge::runtime::cache::{CacheStats, KernelCache, Key, Lookup};
use actforge::runtime::nvrtc::{self, compile, CompileOptions, Output};
use actforge::runtime::tools::{find_ptxas, ptxas_check};
use rand::rngs::StdRng;
use rand::SeedableRng;

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
const T5: &str = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// NVRTC, or a printed reason to skip (a failure when it is required).
fn nvrtc_or_skip(test: &str) -> bool {
    match nvrtc::load() {
        Ok(_) => true,
        Err(e) => {
            assert!(
                !required("ACTFORGE_REQUIRE_NVRTC"),
                "ACTFORGE_REQUIRE_NVRTC=1 but NVRTC is unavailable:\n{e}"
            );
            eprintln!("SKIPPED {test}: {e}");
            false
        }
    }
}

fn function(src: &str) -> Function {
    Function::new(&parse(src).unwrap())
}

fn module_of(fs: &[Function]) -> Module {
    let mut m = Module::new(Selection::default());
    for f in fs {
        m.add(f);
    }
    m
}

/// Compile for sm_80 and sm_90 and check every kernel is in the image.
fn compile_everywhere(m: &Module, label: &str) {
    let src = m.source();
    for arch in [80, 90] {
        let c = compile(&src, label, &CompileOptions::cubin(arch))
            .unwrap_or_else(|e| panic!("{label} for sm_{arch}:\n{e}"));
        assert!(
            c.image.starts_with(b"\x7fELF"),
            "{label}: sm_{arch} image is not a CUBIN"
        );
        let ptx = c.ptx_text().expect("NVRTC also returns PTX");
        for k in m.kernels() {
            assert!(
                ptx.contains(&format!(".entry {}(", k.name)),
                "{label}: {} missing for sm_{arch}",
                k.name
            );
        }
    }
}

#[test]
fn seed_formulas_compile_for_sm80_and_sm90_in_all_dtypes() {
    if !nvrtc_or_skip("seed_formulas") {
        return;
    }
    let m = module_of(&[function(QA), function(T5)]);
    assert_eq!(m.kernels().len(), 12);
    compile_everywhere(&m, "seeds.cu");
}

/// Dispatch modules (per direction and dtype one kernel for a formula and
/// one for a population, shared math): the seeds, every named primitive
/// and 64 random formulas, all dtypes, sm_80 and sm_90.
#[test]
fn dispatch_modules_compile_for_sm80_and_sm90_in_all_dtypes() {
    if !nvrtc_or_skip("dispatch_modules") {
        return;
    }
    let mut fs = vec![function(QA), function(T5)];
    fs.extend(Library::standard().definitions().map(|d| {
        let n = &d.def.name;
        function(&match d.def.params.len() {
            1 => format!("{n}(x)"),
            _ => format!("{n}(x, cos(x))"),
        })
    }));
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(640);
    fs.extend((0..64).map(|_| function(&Tree::ramped(&mut rng, &set, 1, 6).to_formula(&set))));
    let mut m = Module::new(Selection {
        layout: Layout::Dispatch,
        ..Selection::default()
    });
    for f in &fs {
        m.add(f);
    }
    assert!(m.len() > 60, "only {} distinct formulas", m.len());
    // Per direction and dtype: the one-formula dispatch kernel and the
    // population kernel (one formula per slice).
    assert_eq!(m.kernels().len(), 12);
    assert!(m.kernels().iter().all(|k| k.dispatch != k.population));
    compile_everywhere(&m, "dispatch.cu");
}

/// Both math modes compile for sm_75 (no bf16 conversion instruction: the
/// portable code), sm_80 and sm_90, every dtype; the mode is part of the
/// source and so of the cache key.
#[test]
fn both_math_modes_compile_from_sm75_to_sm90_and_key_the_cache_apart() {
    if !nvrtc_or_skip("math_modes") {
        return;
    }
    let mut keys = Vec::new();
    for math in [MathMode::Approx, MathMode::Exact] {
        let mut m = Module::new(Selection {
            math,
            ..Selection::default()
        });
        for src in [QA, T5, "gelu_like(x)", "x / (1 + exp(-x)) + tanh(sin(x))"] {
            m.add(&function(src));
        }
        let src = m.source();
        for arch in [75, 80, 90] {
            let c = compile(&src, "modes.cu", &CompileOptions::cubin(arch))
                .unwrap_or_else(|e| panic!("{} math for sm_{arch}:\n{e}", math.name()));
            let ptx = c.ptx_text().unwrap();
            // The packed 16-bit stores exist from sm_80 on.
            assert_eq!(
                ptx.contains("cvt.rn.bf16x2.f32"),
                arch >= 80,
                "{} math, sm_{arch}",
                math.name()
            );
            assert!(ptx.contains("cvt.f32.f16"), "sm_{arch}: no f16 load cvt");
            assert_eq!(
                ptx.contains("div.full.f32"),
                math == MathMode::Approx,
                "{} math, sm_{arch}",
                math.name()
            );
        }
        keys.push(Key::new(&src, &CompileOptions::cubin(90), (13, 0)));
    }
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn every_named_primitive_compiles_on_its_own() {
    if !nvrtc_or_skip("named_primitives") {
        return;
    }
    let fs: Vec<Function> = Library::standard()
        .definitions()
        .map(|d| {
            let n = &d.def.name;
            function(&match d.def.params.len() {
                1 => format!("{n}(x)"),
                _ => format!("{n}(x, cos(x))"),
            })
        })
        .collect();
    let m = module_of(&fs);
    assert!(
        m.len() >= 15,
        "primitives collapsed to {} distinct formulas",
        m.len()
    );
    compile_everywhere(&m, "primitives.cu");
}

#[test]
fn five_hundred_random_gp_formulas_compile() {
    if !nvrtc_or_skip("random_formulas") {
        return;
    }
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(500);
    let fs: Vec<Function> = (0..500)
        .map(|_| function(&Tree::ramped(&mut rng, &set, 1, 6).to_formula(&set)))
        .collect();
    // Modules of 50 formulas (300 kernels), two at a time (NVRTC is
    // thread-safe across programs).
    let chunks: Vec<&[Function]> = fs.chunks(50).collect();
    let total = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for pair in chunks.chunks(chunks.len().div_ceil(2)) {
            let total = &total;
            s.spawn(move || {
                for (i, c) in pair.iter().enumerate() {
                    let m = module_of(c);
                    total.fetch_add(m.len(), std::sync::atomic::Ordering::Relaxed);
                    compile_everywhere(&m, &format!("random-{i}.cu"));
                }
            });
        }
    });
    // Duplicates (same canonical hash) are compiled once.
    assert!(total.into_inner() > 300);
}

#[test]
fn seed_ptx_assembles_with_ptxas_without_spills() {
    if !nvrtc_or_skip("ptxas") {
        return;
    }
    if find_ptxas().is_none() {
        assert!(
            !required("ACTFORGE_REQUIRE_PTXAS"),
            "ACTFORGE_REQUIRE_PTXAS=1 but ptxas was not found"
        );
        eprintln!("SKIPPED ptxas: ptxas not found (scripts/install-cuda-tools.sh installs it)");
        return;
    }
    for (name, src) in [("seed-qa", QA), ("seed-t5", T5)] {
        let m = Module::single(&function(src));
        let c = compile(&m.source(), name, &CompileOptions::ptx(90)).unwrap();
        let report = ptxas_check(c.ptx_text().unwrap(), 90).unwrap();
        assert_eq!(report.len(), 6, "{name}: {report:?}");
        for r in &report {
            eprintln!(
                "{name} {}: {} registers, {} B spill stores, {} B spill loads",
                r.kernel, r.registers, r.spill_stores, r.spill_loads
            );
            assert!(r.registers > 0 && r.registers <= 255);
            assert_eq!(
                (r.spill_stores, r.spill_loads),
                (0, 0),
                "{name}: {} spills",
                r.kernel
            );
        }
    }
}

#[test]
fn compile_errors_keep_the_source_and_the_log() {
    if !nvrtc_or_skip("compile_errors") {
        return;
    }
    let src = "extern \"C\" __global__ void k(float* x) { x[0] = undefined_thing; }";
    match compile(src, "broken.cu", &CompileOptions::cubin(90)) {
        Err(Error::Compile {
            log,
            source_code,
            options,
            ..
        }) => {
            assert!(log.contains("undefined_thing"), "{log}");
            assert_eq!(source_code, src);
            assert!(options.iter().any(|o| o == "--gpu-architecture=sm_90"));
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

/// The image a GPU gets (`KernelCache::image_for`, what
/// `runtime::device::compile_and_load` loads): a CUBIN for an SM NVRTC
/// knows; for a newer one, PTX of the newest arch NVRTC knows.
#[test]
fn a_gpu_newer_than_nvrtc_gets_ptx_of_its_newest_arch() {
    if !nvrtc_or_skip("a_gpu_newer_than_nvrtc_gets_ptx_of_its_newest_arch") {
        return;
    }
    let src = module_of(&[function("x * sigmoid(x)")]).source();
    let cache = KernelCache::new(None);
    let img = cache.image_for(&src, "fused.cu", 90).unwrap();
    assert_eq!((img.output, img.arch), (Output::Cubin, 90));
    let newest = *nvrtc::supported_archs().unwrap().iter().max().unwrap();
    let img = cache.image_for(&src, "fused.cu", 990).unwrap();
    assert_eq!((img.output, img.arch), (Output::Ptx, newest));
    // An SM below every arch NVRTC knows has no fallback: the error stays.
    assert!(cache.image_for(&src, "fused.cu", 10).is_err());
}

fn stats_delta(a: CacheStats, b: CacheStats) -> (u64, u64, u64, u64) {
    (
        b.memory_hits - a.memory_hits,
        b.disk_hits - a.disk_hits,
        b.misses - a.misses,
        b.corrupt - a.corrupt,
    )
}

#[test]
fn cache_hits_in_memory_and_on_disk_and_distrusts_corrupt_files() {
    if !nvrtc_or_skip("cache") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("actforge-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sel = Selection {
        dtypes: vec![Dtype::F32],
        directions: vec![Direction::Fwd, Direction::Bwd],
        ..Selection::default()
    };
    let mut m = Module::new(sel);
    m.add(&function("silu(x)"));
    let src = m.source();
    let opts = CompileOptions::cubin(90);

    let cache = KernelCache::new(Some(dir.clone()));
    let s0 = cache.stats();
    let (a, how) = cache.get_or_compile(&src, "silu.cu", &opts).unwrap();
    assert_eq!(how, Lookup::Compiled);
    let (b, how) = cache.get_or_compile(&src, "silu.cu", &opts).unwrap();
    assert_eq!(how, Lookup::Memory);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(stats_delta(s0, cache.stats()), (1, 0, 1, 0));
    assert!(cache.stats().compile_time.as_nanos() > 0);

    // A new process (a new cache) finds it on disk, in well under a ms.
    let fresh = KernelCache::new(Some(dir.clone()));
    let t = std::time::Instant::now();
    let (c, how) = fresh.get_or_compile(&src, "silu.cu", &opts).unwrap();
    let disk_hit = t.elapsed();
    assert_eq!(how, Lookup::Disk);
    assert_eq!(c.bytes, a.bytes);
    eprintln!("disk-cache hit: {disk_hit:?}");

    // Nothing but finished entries in the directory (atomic writes).
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "afk");

    // Corrupt it: detected, recompiled, rewritten.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let other = KernelCache::new(Some(dir.clone()));
    let (d, how) = other.get_or_compile(&src, "silu.cu", &opts).unwrap();
    assert_eq!(how, Lookup::Compiled);
    assert_eq!(
        stats_delta(CacheStats::default(), other.stats()),
        (0, 0, 1, 1)
    );
    assert_eq!(d.bytes, a.bytes);
    let again = KernelCache::new(Some(dir.clone()));
    assert_eq!(
        again.get_or_compile(&src, "silu.cu", &opts).unwrap().1,
        Lookup::Disk
    );

    // A different arch is a different entry.
    let (e, how) = again
        .get_or_compile(&src, "silu.cu", &CompileOptions::cubin(80))
        .unwrap();
    assert_eq!(how, Lookup::Compiled);
    assert_eq!((e.output, e.arch), (Output::Cubin, 80));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A timing measurement, not part of the test command (compile times
/// depend on the machine and its load): `cargo test --release --test
/// nvrtc -- --ignored --nocapture one_module`; `actforge bench-compile`
/// measures the same for the README.
#[test]
#[ignore = "a timing measurement: run with --ignored --nocapture"]
fn one_module_for_many_formulas_is_cheaper_per_formula() {
    if !nvrtc_or_skip("batching") {
        return;
    }
    let set = PrimitiveSet::seed();
    let mut rng = StdRng::seed_from_u64(64);
    let fs: Vec<Function> = (0..16)
        .map(|_| function(&Tree::ramped(&mut rng, &set, 2, 5).to_formula(&set)))
        .collect();
    let sel = || Selection {
        dtypes: vec![Dtype::F32],
        ..Selection::default()
    };
    let opts = CompileOptions::cubin(90);
    let mut one_by_one = std::time::Duration::ZERO;
    for f in &fs {
        let mut m = Module::new(sel());
        m.add(f);
        one_by_one += compile(&m.source(), "one.cu", &opts).unwrap().elapsed;
    }
    let mut m = Module::new(sel());
    for f in &fs {
        m.add(f);
    }
    let batched = compile(&m.source(), "batch.cu", &opts).unwrap().elapsed;
    let n = m.len() as f64;
    eprintln!(
        "{} formulas (fwd+bwd f32): one by one {:.1} ms/formula, one module {:.1} ms/formula",
        m.len(),
        one_by_one.as_secs_f64() * 1e3 / fs.len() as f64,
        batched.as_secs_f64() * 1e3 / n
    );
    assert!(
        batched < one_by_one,
        "batching is not faster: {batched:?} vs {one_by_one:?}"
    );
}
