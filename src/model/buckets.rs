//! T5's relative position buckets (Raffel et al. 2020, as in the
//! published Mesh TensorFlow and Hugging Face code): exact buckets for
//! short distances, logarithmic ones up to `max_distance`, the last bucket
//! beyond. Bidirectional (encoder) buckets split the range by sign;
//! causal (decoder) ones only count keys behind the query.

use candle_core::{Device, Result, Tensor};

/// The bucket of `relative = key_position − query_position`, computed in
/// f32 as the published code does (which fixes the boundary cases).
pub fn relative_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let (n, offset, distance) = match bidirectional {
        true => (
            num_buckets / 2,
            if relative > 0 { num_buckets / 2 } else { 0 },
            relative.unsigned_abs() as usize,
        ),
        false => (num_buckets, 0, (-relative.min(0)) as usize),
    };
    let max_exact = n / 2;
    if distance < max_exact {
        return offset + distance;
    }
    let ratio = (distance as f32 / max_exact as f32).ln();
    let scale = ((max_distance as f64 / max_exact as f64).ln()) as f32;
    let large = max_exact + ((ratio / scale) * (n - max_exact) as f32) as usize;
    offset + large.min(n - 1)
}

/// Buckets `[T, S]` (u32) for queries at absolute positions
/// `offset..offset + t` against keys at `0..s`.
pub fn bucket_table(
    t: usize,
    s: usize,
    offset: usize,
    bidirectional: bool,
    (num_buckets, max_distance): (usize, usize),
    device: &Device,
) -> Result<Tensor> {
    let data: Vec<u32> = (0..t)
        .flat_map(|i| {
            (0..s).map(move |j| {
                let rel = j as i64 - (offset + i) as i64;
                relative_bucket(rel, bidirectional, num_buckets, max_distance) as u32
            })
        })
        .collect();
    Tensor::from_vec(data, (t, s), device)
}
