//! External CUDA tools: finding and running `ptxas` (from the
//! nvidia-cuda-nvcc wheel or a CUDA install) to check generated PTX, and
//! the disassemblers `nvdisasm` and `cuobjdump` (from the
//! nvidia-cuda-nvdisasm and nvidia-cuda-cuobjdump wheels) that read a CUBIN
//! on a machine without a GPU.

use std::path::PathBuf;
use std::process::Command;

use super::nvrtc::{parse_ptxas_log, toolchain_dir, RegisterReport};
use crate::error::{Error, Result};

/// `ACTFORGE_PTXAS`, the toolchain directory, `$CUDA_HOME/bin`, then PATH.
pub fn find_ptxas() -> Option<PathBuf> {
    find_tool("ptxas", "ACTFORGE_PTXAS")
}

/// `ACTFORGE_NVDISASM`, the toolchain directory, `$CUDA_HOME/bin`, then PATH.
pub fn find_nvdisasm() -> Option<PathBuf> {
    find_tool("nvdisasm", "ACTFORGE_NVDISASM")
}

/// `ACTFORGE_CUOBJDUMP`, the toolchain directory, `$CUDA_HOME/bin`, then PATH.
pub fn find_cuobjdump() -> Option<PathBuf> {
    find_tool("cuobjdump", "ACTFORGE_CUOBJDUMP")
}

fn find_tool(name: &str, var: &str) -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(var) {
        c.push(PathBuf::from(p));
    }
    if let Some(d) = toolchain_dir() {
        c.push(d.join("nvidia/cu13/bin").join(name));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(h) = std::env::var_os(var) {
            c.push(PathBuf::from(h).join("bin").join(name));
        }
    }
    c.push(PathBuf::from("/usr/local/cuda/bin").join(name));
    if let Some(path) = std::env::var_os("PATH") {
        c.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    c.into_iter().find(|p| p.is_file())
}

fn missing_disassembler(what: &str) -> Error {
    Error::Missing {
        what: what.into(),
        detail: format!(
            "not found in ACTFORGE_{}, the actforge toolchain directory, CUDA_HOME or PATH",
            what.to_ascii_uppercase()
        ),
        hint: "install it with `scripts/install-cuda-tools.sh` (nvidia-cuda-nvdisasm and \
nvidia-cuda-cuobjdump from PyPI, no GPU needed)"
            .into(),
    }
}

/// Run `tool args… <cubin written to a temporary file>`; its stdout.
fn run_on_cubin(tool: &std::path::Path, args: &[&str], cubin: &[u8]) -> Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "actforge-disasm-{}-{:x}",
        std::process::id(),
        fxhash_bytes(cubin)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let input = dir.join("module.cubin");
    std::fs::write(&input, cubin).map_err(|e| Error::io(input.display().to_string(), e))?;
    let out = Command::new(tool)
        .args(args)
        .arg(&input)
        .output()
        .map_err(|e| Error::io(tool.display().to_string(), e));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(Error::Cuda(format!(
            "{} {} failed: {}",
            tool.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `nvdisasm -json` of a CUBIN: every function's SASS, calls resolved to
/// their callees' names.
pub fn nvdisasm_json(cubin: &[u8]) -> Result<String> {
    let tool = find_nvdisasm().ok_or_else(|| missing_disassembler("nvdisasm"))?;
    run_on_cubin(&tool, &["-json"], cubin)
}

/// `cuobjdump -res-usage` of a CUBIN: registers, stack and local memory
/// per function.
pub fn cuobjdump_res_usage(cubin: &[u8]) -> Result<String> {
    let tool = find_cuobjdump().ok_or_else(|| missing_disassembler("cuobjdump"))?;
    run_on_cubin(&tool, &["-res-usage"], cubin)
}

fn fxhash_bytes(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Assemble `ptx` for `sm_<arch>` with `ptxas -v`; return per-kernel
/// register and spill counts.
pub fn ptxas_check(ptx: &str, arch: u32) -> Result<Vec<RegisterReport>> {
    let ptxas = find_ptxas().ok_or_else(|| Error::Missing {
        what: "ptxas".into(),
        detail: "not found in ACTFORGE_PTXAS, the actforge toolchain directory, CUDA_HOME or PATH"
            .into(),
        hint: "install it with `scripts/install-cuda-tools.sh` (nvidia-cuda-nvcc 13.0 from PyPI)"
            .into(),
    })?;
    let dir = std::env::temp_dir().join(format!(
        "actforge-ptxas-{}-{:x}",
        std::process::id(),
        fxhash(ptx)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let input = dir.join("module.ptx");
    std::fs::write(&input, ptx).map_err(|e| Error::io(input.display().to_string(), e))?;
    let out = Command::new(&ptxas)
        .arg(format!("-arch=sm_{arch}"))
        .arg("-v")
        .arg("-o")
        .arg(dir.join("module.cubin"))
        .arg(&input)
        .output()
        .map_err(|e| Error::io(ptxas.display().to_string(), e))?;
    let _ = std::fs::remove_dir_all(&dir);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(Error::Compile {
            message: format!("ptxas rejected the PTX for sm_{arch}"),
            options: vec![format!("-arch=sm_{arch}"), "-v".into()],
            log,
            source_code: ptx.to_string(),
        });
    }
    Ok(parse_ptxas_log(&log))
}

fn fxhash(s: &str) -> u64 {
    fxhash_bytes(s.as_bytes())
}
