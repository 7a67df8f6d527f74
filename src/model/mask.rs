//! Additive attention masks and per-row positions, from padding masks
//! `[B, S]` (1 = real token, 0 = padding; any dtype).

use candle_core::{DType, Device, Result, Tensor};

use super::ops::MASKED;

/// `[T, S]`: query `i` (absolute position `offset + i`) may see keys
/// `0..=offset + i`; later keys get [`MASKED`].
pub fn causal(t: usize, s: usize, offset: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..s).map(move |j| if j > offset + i { MASKED } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (t, s), device)
}

/// `[B, 1, 1, S]`: 0 on real keys, [`MASKED`] on padding.
pub fn key_padding(mask: &Tensor) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let m = mask.to_dtype(DType::F32)?;
    m.affine(-f64::from(MASKED), f64::from(MASKED))?
        .reshape((b, 1, 1, s))
}

/// Host copy of a padding mask as booleans.
pub fn host_mask(mask: &Tensor) -> Result<Vec<Vec<bool>>> {
    let rows = mask.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(|v| v != 0.0).collect())
        .collect())
}

/// Position of each token within its row: the count of real tokens
/// before it (so left padding does not shift a sentence; padding itself
/// gets the position of the next real token, clamped to 0..).
pub fn positions(mask: &[Vec<bool>]) -> Vec<u32> {
    mask.iter()
        .flat_map(|row| {
            row.iter().scan(0u32, |seen, &real| {
                let pos = *seen;
                *seen += u32::from(real);
                Some(pos)
            })
        })
        .collect()
}
