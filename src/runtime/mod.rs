//! The kernel runtime: NVRTC compilation (loaded at run time through
//! cudarc), the in-memory and on-disk kernel cache, and the one place that
//! launches kernels on a GPU. Knows nothing about candle.

pub mod cache;
pub mod device;
pub mod nvrtc;
pub mod tools;

pub use cache::{CacheStats, KernelCache, Lookup};
pub use nvrtc::{compile, CompileOptions, Compiled, Nvrtc, Output, RegisterReport};
