//! Padding masks `[B, S]` (1 = real token, 0 = padding; any dtype) on the
//! host, and per-row positions. (Which keys attention may see is an
//! [`op::softmax::ScoreMask`](crate::op::softmax::ScoreMask), built from
//! these without a tensor per step.)

use candle_core::{DType, Result, Tensor};

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
