//! The CPU bandwidth baseline: a copy of the same bytes the forward pass
//! moves (read `elems` values, write `elems` values), on as many threads
//! as candle's CPU pool has, into a buffer allocated once. Its rate is what
//! `pct_of_copy` divides by on the CPU, as the device-to-device copy is on
//! a GPU.

use std::time::Instant;

use super::{Pass, Row, Variant};

/// Below this many bytes one thread copies (spawning costs more).
const PARALLEL_BYTES: usize = 1 << 20;

/// The copy row: `iters` timed rounds after one warm-up.
pub fn run(elems: usize, bytes_per_elem: usize, iters: usize) -> Row {
    let len = elems * bytes_per_elem;
    let src: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut dst = vec![0u8; len];
    let threads = candle_core::utils::get_num_threads().max(1);
    let mut samples = Vec::with_capacity(iters);
    for round in 0..=iters {
        let t = Instant::now();
        copy(&src, &mut dst, threads);
        if round > 0 {
            samples.push(t.elapsed().as_secs_f64());
        }
    }
    std::hint::black_box(&dst);
    Row::from_samples(Variant::Copy, Pass::Fwd, elems, 2 * len, &samples)
}

/// `dst.copy_from_slice(src)`, split over `threads` scoped threads.
fn copy(src: &[u8], dst: &mut [u8], threads: usize) {
    if src.len() < PARALLEL_BYTES || threads == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let chunk = src.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (d, c) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
            s.spawn(move || d.copy_from_slice(c));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_byte_on_any_thread_count() {
        let src: Vec<u8> = (0..3 * PARALLEL_BYTES + 7)
            .map(|i| (i * 31) as u8)
            .collect();
        for threads in [1, 2, 3, 8] {
            let mut dst = vec![0u8; src.len()];
            copy(&src, &mut dst, threads);
            assert!(dst == src, "{threads} threads");
        }
    }

    #[test]
    fn the_row_counts_read_and_write() {
        let r = run(1000, 4, 3);
        assert_eq!(
            (r.variant, r.pass, r.elems, r.rounds),
            (Variant::Copy, Pass::Fwd, 1000, 3)
        );
        assert!(r.min_seconds <= r.seconds && r.seconds <= r.max_seconds);
        assert!((r.gbps - 8000.0 / r.seconds / 1e9).abs() < 1e-9 * r.gbps.max(1.0));
    }
}
