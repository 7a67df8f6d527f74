//! External CUDA tools: finding and running `ptxas` (from the
//! nvidia-cuda-nvcc wheel or a CUDA install) to check generated PTX.

use std::path::PathBuf;
use std::process::Command;

use super::nvrtc::{parse_ptxas_log, toolchain_dir, RegisterReport};
use crate::error::{Error, Result};

/// `ACTFORGE_PTXAS`, the toolchain directory, `$CUDA_HOME/bin`, then PATH.
pub fn find_ptxas() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("ACTFORGE_PTXAS") {
        c.push(PathBuf::from(p));
    }
    if let Some(d) = toolchain_dir() {
        c.push(d.join("nvidia/cu13/bin/ptxas"));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(h) = std::env::var_os(var) {
            c.push(PathBuf::from(h).join("bin/ptxas"));
        }
    }
    c.push(PathBuf::from("/usr/local/cuda/bin/ptxas"));
    if let Some(path) = std::env::var_os("PATH") {
        c.extend(std::env::split_paths(&path).map(|d| d.join("ptxas")));
    }
    c.into_iter().find(|p| p.is_file())
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
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
