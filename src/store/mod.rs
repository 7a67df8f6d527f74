//! Run-directory storage: atomic file replacement, append-only JSONL logs,
//! CSV tables ([`files`]); writes that never follow a symbolic link and
//! bare-name checks ([`safe`]); one process per run directory ([`lock`]);
//! atomic creation of a new run directory ([`newdir`]).
//!
//! A leaf of the pipeline: it knows no domain type (no formula, model,
//! recipe or search), only files and folders.

pub mod files;
pub mod lock;
pub mod newdir;
pub mod safe;

pub use lock::{Lock, LOCK_FILE};
pub use newdir::NewDir;

/// A stable 64-bit checksum of `bytes` (FNV-1a with a splitmix finish):
/// the same value on every machine and version. It detects damage and
/// mix-ups, not forgery (it is not keyed).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// [`checksum`] as 16 hex digits.
pub fn checksum_hex(bytes: &[u8]) -> String {
    format!("{:016x}", checksum(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksums_are_pinned() {
        // Pinned: a change here makes every recorded checksum disagree.
        assert_eq!(super::checksum_hex(b"hydrogen"), "4aba6f0981cb7df2");
        assert_ne!(super::checksum(b"ab"), super::checksum(b"ba"));
    }
}
