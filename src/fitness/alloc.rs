//! Keeping freed memory in the process while training.
//!
//! A CPU training step frees and allocates the same large buffers every
//! step (logits, activations, gradients). glibc returns blocks above its
//! mmap threshold to the kernel on free and trims the heap top, so each
//! step paid for fresh `mmap`s and their page faults (zeroed by the
//! kernel) again. Raising both thresholds keeps the memory for the next
//! step: the steady state of a long run. Measured (README, "Where a
//! training step's time goes"): this against glibc's defaults and against
//! mimalloc.
//!
//! `ACTFORGE_MALLOC=system` leaves glibc's defaults (for comparisons).

use std::sync::Once;

/// Raise glibc's mmap and trim thresholds once per process (a no-op off
/// glibc and with `ACTFORGE_MALLOC=system`). Idempotent; called by every
/// training path (`fitness::run`, `bench-step`).
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("ACTFORGE_MALLOC").is_ok_and(|v| v == "system") {
            return;
        }
        set_thresholds();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
    const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
    // SAFETY: mallopt only tunes glibc's allocator; valid parameters.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, i32::MAX);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}
