//! NVRTC through cudarc, loaded at run time.
//!
//! cudarc `dlopen`s libnvrtc on first use and panics when it cannot, so we
//! probe first and turn absence into an [`Error::Missing`] that says how to
//! get the library. `ACTFORGE_NVRTC` may name the library file (or its
//! directory); it is loaded with `RTLD_GLOBAL` before cudarc looks, so
//! cudarc's lookup by soname finds it. The toolchain installer
//! (`scripts/install-cuda-tools.sh`) puts it in `~/.cache/actforge/cuda`,
//! which is also tried.

use std::ffi::{c_char, c_int, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cudarc::nvrtc::{result, sys};

use crate::error::{Error, Result};

/// How to install NVRTC, for error messages.
pub const NVRTC_HINT: &str =
    "install it with `scripts/install-cuda-tools.sh` (NVRTC 13.0 from PyPI, no GPU needed), \
or point ACTFORGE_NVRTC at libnvrtc.so.13";

/// Proof that libnvrtc is loaded, with its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nvrtc {
    pub major: i32,
    pub minor: i32,
}

/// What the loader tried, for error messages.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(p) = std::env::var("ACTFORGE_NVRTC") {
        let p = PathBuf::from(p);
        if p.is_dir() {
            out.push(p.join("libnvrtc.so.13"));
            out.push(p.join("libnvrtc.so"));
        } else {
            out.push(p);
        }
    }
    if let Some(dir) = toolchain_dir() {
        out.push(dir.join("nvidia/cu13/lib/libnvrtc.so.13"));
    }
    out
}

/// Where `scripts/install-cuda-tools.sh` installs the CUDA wheels.
pub fn toolchain_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("ACTFORGE_CUDA_TOOLS") {
        return Some(PathBuf::from(d));
    }
    super::actforge_cache("cuda")
}

/// Load `libnvrtc-builtins.so.*` next to `lib` (if present); true unless
/// one exists and fails to load.
fn preload_builtins(lib: &Path) -> bool {
    let Some(dir) = lib.parent() else {
        return true;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc-builtins.so") && !n.contains(".alt."))
        })
        .collect();
    found.sort();
    found.iter().all(|p| preload(p))
}

#[cfg(unix)]
fn preload(path: &Path) -> bool {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: loading runs the library's initialisers; the candidates are
    // NVRTC's own libraries (libnvrtc, its builtins), whose initialisers
    // have no preconditions, and the handle is never closed (forgotten).
    match unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) } {
        Ok(lib) => {
            // Keep it loaded for the life of the process.
            std::mem::forget(lib);
            true
        }
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn preload(path: &Path) -> bool {
    // SAFETY: as on unix: NVRTC's own libraries, never unloaded.
    match unsafe { libloading::Library::new(path) } {
        Ok(lib) => {
            std::mem::forget(lib);
            true
        }
        Err(_) => false,
    }
}

/// Load NVRTC once; later calls return the same answer.
pub fn load() -> Result<Nvrtc> {
    static STATE: OnceLock<std::result::Result<Nvrtc, String>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let tried = candidates();
            for c in &tried {
                // libnvrtc dlopens its builtins by soname at compile time:
                // load the sibling first so that lookup succeeds too.
                if c.exists() && preload_builtins(c) && preload(c) {
                    break;
                }
            }
            if !present() {
                let mut where_ = String::from("the dynamic linker's search path (LD_LIBRARY_PATH)");
                for c in &tried {
                    where_.push_str(&format!(", {}", c.display()));
                }
                return Err(format!("libnvrtc was not found in {where_}"));
            }
            let (mut major, mut minor): (c_int, c_int) = (0, 0);
            // SAFETY: libnvrtc is loaded (present() above); the two
            // out-pointers are valid, aligned c_ints on this stack frame.
            unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
                .result()
                .map_err(|e| format!("nvrtcVersion failed: {e:?}"))?;
            Ok(Nvrtc { major, minor })
        })
        .clone()
        .map_err(|detail| Error::Missing {
            what: "NVRTC (libnvrtc.so.13)".into(),
            detail,
            hint: NVRTC_HINT.into(),
        })
}

#[cfg(not(feature = "cuda"))]
fn present() -> bool {
    // SAFETY: only tries to load the library (cudarc's dynamic loading);
    // no NVRTC function is called.
    unsafe { sys::is_culib_present() }
}

/// With candle's CUDA backend, cudarc links libnvrtc at build time: if the
/// process started, the library is there.
#[cfg(feature = "cuda")]
fn present() -> bool {
    true
}

/// What to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// SASS for one real architecture (`sm_XX`).
    Cubin,
    /// PTX for a virtual architecture (`compute_XX`), JIT-compiled by the
    /// driver; the fallback when NVRTC does not know the device's SM.
    Ptx,
}

/// Options for one compile. `arch` is a number such as 90 (sm_90).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    pub arch: u32,
    pub output: Output,
    /// Ask ptxas for register and spill counts in the log (CUBIN only).
    pub verbose_ptxas: bool,
}

impl CompileOptions {
    pub fn cubin(arch: u32) -> CompileOptions {
        CompileOptions {
            arch,
            output: Output::Cubin,
            verbose_ptxas: false,
        }
    }

    pub fn ptx(arch: u32) -> CompileOptions {
        CompileOptions {
            arch,
            output: Output::Ptx,
            verbose_ptxas: false,
        }
    }

    /// The NVRTC command line. Chosen for compile time: `--minimal` skips
    /// the implicit CUDA headers (the generated source needs none);
    /// `--Ofast-compile=min` is the mildest of NVRTC 13's compile-time
    /// levels (seed Q&A module: 0.37 s → 0.20 s on the dev machine); no
    /// debug or line info. `--fmad=true` is NVRTC's default, spelled out
    /// because the cache key includes the options. No fast math: accuracy
    /// first.
    pub fn args(&self) -> Vec<String> {
        let arch = match self.output {
            Output::Cubin => format!("--gpu-architecture=sm_{}", self.arch),
            Output::Ptx => format!("--gpu-architecture=compute_{}", self.arch),
        };
        let mut v = vec![
            arch,
            "--minimal".into(),
            "--std=c++17".into(),
            "--fmad=true".into(),
            "--Ofast-compile=min".into(),
        ];
        if self.verbose_ptxas && self.output == Output::Cubin {
            v.push("--ptxas-options=-v".into());
        }
        v
    }
}

/// A compiled program.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub output: Output,
    pub arch: u32,
    /// CUBIN bytes or PTX text (as bytes).
    pub image: Vec<u8>,
    /// The PTX, when it was produced (always for `Output::Ptx`).
    pub ptx: Option<String>,
    pub log: String,
    pub elapsed: Duration,
}

impl Compiled {
    pub fn ptx_text(&self) -> Option<&str> {
        self.ptx.as_deref()
    }
}

/// Compile `src` (a program name appears in NVRTC's messages).
pub fn compile(src: &str, name: &str, opts: &CompileOptions) -> Result<Compiled> {
    load()?;
    let start = Instant::now();
    let csrc =
        CString::new(src).map_err(|_| Error::Usage("kernel source contains a NUL byte".into()))?;
    let cname = CString::new(name).unwrap_or_else(|_| CString::new("actforge.cu").expect("static"));
    let args = opts.args();
    let prog = result::create_program(&csrc, Some(&cname)).map_err(|e| {
        nvrtc_error(
            format!("nvrtcCreateProgram failed: {e:?}"),
            src,
            &args,
            String::new(),
        )
    })?;
    let guard = ProgramGuard(prog);
    // SAFETY: `prog` is a live program (created above, destroyed only by
    // `guard` after its last use below); `args` outlives the call.
    let compiled = unsafe { result::compile_program(prog, &args) };
    // SAFETY: `prog` is live and compilation has returned.
    let log = unsafe { result::get_program_log(prog) }
        .map(|l| c_chars_to_string(&l))
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(nvrtc_error(
            format!("NVRTC could not compile `{name}` ({e:?})"),
            src,
            &args,
            log,
        ));
    }
    // SAFETY: `prog` is live and compiled successfully.
    let ptx = match unsafe { result::get_ptx(prog) } {
        Ok(p) => Some(c_chars_to_string(&p)),
        Err(_) => None,
    };
    let image = match opts.output {
        Output::Ptx => ptx.clone().unwrap_or_default().into_bytes(),
        // SAFETY: `prog` is live and compiled successfully.
        Output::Cubin => unsafe { get_cubin(prog) }.map_err(|e| {
            nvrtc_error(
                format!("nvrtcGetCUBIN failed: {e:?}"),
                src,
                &args,
                log.clone(),
            )
        })?,
    };
    drop(guard);
    Ok(Compiled {
        output: opts.output,
        arch: opts.arch,
        image,
        ptx,
        log,
        elapsed: start.elapsed(),
    })
}

/// Architectures this NVRTC can target (e.g. `[75, 80, …, 120]`).
pub fn supported_archs() -> Result<Vec<u32>> {
    load()?;
    let mut n: c_int = 0;
    // SAFETY: NVRTC is loaded (load() above); `n` is a valid out-pointer.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
        .result()
        .map_err(|e| Error::Cuda(format!("nvrtcGetNumSupportedArchs: {e:?}")))?;
    let mut v = vec![0 as c_int; n as usize];
    // SAFETY: `v` holds exactly the `n` entries NVRTC said it will write.
    unsafe { sys::nvrtcGetSupportedArchs(v.as_mut_ptr()) }
        .result()
        .map_err(|e| Error::Cuda(format!("nvrtcGetSupportedArchs: {e:?}")))?;
    Ok(v.into_iter().map(|a| a as u32).collect())
}

struct ProgramGuard(sys::nvrtcProgram);

impl Drop for ProgramGuard {
    fn drop(&mut self) {
        // SAFETY: the guard owns the program, destroyed exactly once, after
        // every use of it in `compile`.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

unsafe fn get_cubin(prog: sys::nvrtcProgram) -> std::result::Result<Vec<u8>, result::NvrtcError> {
    let mut size = 0usize;
    sys::nvrtcGetCUBINSize(prog, &mut size).result()?;
    let mut buf = vec![0u8; size];
    sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut c_char).result()?;
    Ok(buf)
}

fn c_chars_to_string(v: &[c_char]) -> String {
    let bytes: Vec<u8> = v
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn nvrtc_error(message: String, src: &str, args: &[String], log: String) -> Error {
    Error::Compile {
        message,
        options: args.to_vec(),
        log,
        source_code: src.to_string(),
    }
}

/// Registers and spills per kernel, parsed from a `--ptxas-options=-v` log
/// or from ptxas's own `-v` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterReport {
    pub kernel: String,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
}

pub fn parse_ptxas_log(log: &str) -> Vec<RegisterReport> {
    let mut out: Vec<RegisterReport> = Vec::new();
    let mut current: Option<RegisterReport> = None;
    for line in log.lines() {
        if let Some(i) = line.find("Compiling entry function '") {
            let rest = &line[i + "Compiling entry function '".len()..];
            let name = rest.split('\'').next().unwrap_or("").to_string();
            if let Some(c) = current.take() {
                out.push(c);
            }
            current = Some(RegisterReport {
                kernel: name,
                registers: 0,
                spill_stores: 0,
                spill_loads: 0,
            });
        }
        if let Some(c) = current.as_mut() {
            if let Some(v) = number_before(line, " bytes spill stores") {
                c.spill_stores = v;
            }
            if let Some(v) = number_before(line, " bytes spill loads") {
                c.spill_loads = v;
            }
            if let Some(v) = number_before(line, " registers") {
                if line.contains("Used") {
                    c.registers = v;
                }
            }
        }
    }
    if let Some(c) = current.take() {
        out.push(c);
    }
    out
}

fn number_before(line: &str, marker: &str) -> Option<u32> {
    let i = line.find(marker)?;
    let digits: String = line[..i]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ptxas_verbose_output() {
        let log = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function 'act_1_fwd_f32' for 'sm_90'\n\
ptxas info    : Function properties for act_1_fwd_f32\n\
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 17 registers, used 0 barriers, 376 bytes cmem[0]\n\
ptxas info    : Compiling entry function 'act_1_bwd_f32' for 'sm_90'\n\
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n\
ptxas info    : Used 255 registers\n";
        let r = parse_ptxas_log(log);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            RegisterReport {
                kernel: "act_1_fwd_f32".into(),
                registers: 17,
                spill_stores: 0,
                spill_loads: 0
            }
        );
        assert_eq!(r[1].registers, 255);
        assert_eq!(r[1].spill_stores, 4);
    }

    #[test]
    fn options_pick_real_or_virtual_arch() {
        assert!(CompileOptions::cubin(90)
            .args()
            .contains(&"--gpu-architecture=sm_90".to_string()));
        assert!(CompileOptions::ptx(80)
            .args()
            .contains(&"--gpu-architecture=compute_80".to_string()));
    }
}
