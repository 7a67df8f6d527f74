//! Batch compile: the kernels of a generation's new candidates in one
//! NVRTC program (the dispatch layout: one forward and one backward f32
//! kernel for the whole module, each formula a device function), so one
//! compile serves the generation. A compile failure rejects only the
//! candidates it belongs to: the batch is split in halves until the
//! failing formulas are alone, and each keeps its NVRTC log.
//!
//! Used when the search trains on a GPU (or with `--compile-check`); on
//! the CPU the fused op evaluates the formula without kernels. Compiled
//! modules go through the process-wide kernel cache (memory and disk), so
//! a resumed search does not pay for them twice.

use crate::codegen::{Dtype, Module};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::runtime::cache::KernelCache;
use crate::runtime::nvrtc::CompileOptions;

/// Compile `functions` in as few programs as failures allow. Returns, per
/// function, `None` (compiled) or the failure text with the log. Errors
/// other than [`Error::Compile`] (NVRTC missing, say) are returned as is:
/// they are the environment's fault, not the candidates'.
pub fn batch_compile<C>(functions: &[&Function], compile: &mut C) -> Result<Vec<Option<String>>>
where
    C: FnMut(&[&Function]) -> Result<()>,
{
    let mut out = vec![None; functions.len()];
    bisect(functions, 0, compile, &mut out)?;
    Ok(out)
}

fn bisect<C>(
    functions: &[&Function],
    offset: usize,
    compile: &mut C,
    out: &mut [Option<String>],
) -> Result<()>
where
    C: FnMut(&[&Function]) -> Result<()>,
{
    if functions.is_empty() {
        return Ok(());
    }
    match compile(functions) {
        Ok(()) => Ok(()),
        Err(Error::Compile { message, log, .. }) if functions.len() == 1 => {
            out[offset] = Some(format!("{message}\n{log}"));
            Ok(())
        }
        Err(Error::Compile { .. }) => {
            let mid = functions.len() / 2;
            bisect(&functions[..mid], offset, compile, out)?;
            bisect(&functions[mid..], offset + mid, compile, out)
        }
        Err(e) => Err(e),
    }
}

/// The dispatch module of `functions` (f32, forward and backward): the
/// module a lockstep population of these formulas loads on CUDA
/// ([`Module::generation`], registered by the engine's compile stage), so
/// that what screening compiles is what trains.
pub fn generation_module(functions: &[&Function]) -> Module {
    Module::generation(vec![Dtype::F32], functions.iter().copied())
}

/// Compile `functions` as one dispatch module for `sm_<arch>` through the
/// process-wide kernel cache.
pub fn nvrtc_compile(functions: &[&Function], arch: u32) -> Result<()> {
    let module = generation_module(functions);
    KernelCache::global()
        .get_or_compile(
            &module.source(),
            "generation.cu",
            &CompileOptions::cubin(arch),
        )
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    fn funcs(srcs: &[&str]) -> Vec<Function> {
        srcs.iter()
            .map(|s| Function::new(&parse(s).unwrap()))
            .collect()
    }

    /// A fake compiler that rejects any batch holding a "poisoned" hash.
    fn fake(poison: Vec<u64>, calls: &mut usize) -> impl FnMut(&[&Function]) -> Result<()> + '_ {
        move |fs: &[&Function]| {
            *calls += 1;
            match fs.iter().find(|f| poison.contains(&f.hash)) {
                Some(f) => Err(Error::Compile {
                    message: "NVRTC failed".into(),
                    options: vec![],
                    log: format!("error in act_{:016x}", f.hash),
                    source_code: String::new(),
                }),
                None => Ok(()),
            }
        }
    }

    #[test]
    fn a_failure_rejects_only_its_candidate() {
        let fs = funcs(&["x", "sin(x)", "cos(x)", "tanh(x)", "exp(x)", "silu(x)"]);
        let refs: Vec<&Function> = fs.iter().collect();
        let mut calls = 0;
        let out =
            batch_compile(&refs, &mut fake(vec![fs[2].hash, fs[5].hash], &mut calls)).unwrap();
        let failed: Vec<usize> = (0..6).filter(|&i| out[i].is_some()).collect();
        assert_eq!(failed, [2, 5]);
        assert!(out[2]
            .as_ref()
            .unwrap()
            .contains(&format!("{:016x}", fs[2].hash)));
        let mut calls_ok = 0;
        let out = batch_compile(&refs, &mut fake(vec![], &mut calls_ok)).unwrap();
        assert!(out.iter().all(Option::is_none));
        assert_eq!(calls_ok, 1, "one program when nothing fails");
        assert!(calls < 12, "{calls}");
    }

    /// What screening compiles is the module a lockstep population of the
    /// generation loads (`op::population::register_generation`): one
    /// source, so one kernel-cache key and one compile.
    #[test]
    fn screening_compiles_the_population_module_of_the_generation() {
        let fs = funcs(&["x", "sin(x)", "tanh(x) * x"]);
        let refs: Vec<&Function> = fs.iter().collect();
        let population = Module::generation(vec![Dtype::F32], refs.iter().copied());
        assert_eq!(generation_module(&refs).source(), population.source());
    }

    #[test]
    fn environment_errors_are_not_candidate_failures() {
        let fs = funcs(&["x"]);
        let refs: Vec<&Function> = fs.iter().collect();
        let e = batch_compile(&refs, &mut |_: &[&Function]| {
            Err(Error::Missing {
                what: "NVRTC".into(),
                detail: "not installed".into(),
                hint: "install it".into(),
            })
        });
        assert!(e.is_err());
    }
}
