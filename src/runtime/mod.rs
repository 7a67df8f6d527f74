//! The kernel runtime: NVRTC compilation (loaded at run time through
//! cudarc), the in-memory and on-disk kernel cache, and the one place that
//! launches kernels on a GPU. Knows nothing about candle.

pub mod arch;
pub mod cache;
pub mod device;
pub mod nvrtc;
pub mod tools;

pub use arch::Arch;
pub use cache::{CacheStats, KernelCache, Lookup};
pub use nvrtc::{compile, CompileOptions, Compiled, Nvrtc, Output, RegisterReport};

/// `$XDG_CACHE_HOME/actforge/<sub>`, else `~/.cache/actforge/<sub>`.
pub fn actforge_cache(sub: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("actforge").join(sub))
}
