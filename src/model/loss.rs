//! The training loss: masked token cross-entropy per population member,
//! and masked token accuracy. Both take logits `[P, B, T, V]` and targets
//! and a mask `[B, T]` shared by every member.

use candle_core::{DType, Result, Tensor, D};

use super::ops::log_softmax;

/// Mean cross-entropy over the masked-in tokens, per member: returns the
/// differentiable loss `[P]` (f32) and the number of tokens it averages.
/// Back-propagate `loss.sum_all()`: members share no parameters, so each
/// gets the gradient of its own loss. A NaN or Inf loss is returned as is
/// (numerical failure is a value). With no token masked in, the loss is 0.
pub fn masked_cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<(Tensor, usize)> {
    let (p, b, t, v) = logits.dims4()?;
    let n = b * t;
    let logp = log_softmax(&logits.reshape((p, n, v))?)?;
    let idx = target
        .to_dtype(DType::U32)?
        .reshape((1, n, 1))?
        .broadcast_as((p, n, 1))?
        .contiguous()?;
    let picked = logp.gather(&idx, 2)?.squeeze(2)?;
    let weights = mask.to_dtype(DType::F32)?.reshape((1, n))?;
    let count = weights.sum_all()?.to_scalar::<f32>()? as usize;
    let total = picked.broadcast_mul(&weights)?.sum(1)?;
    Ok(((total * (-1.0 / count.max(1) as f64))?, count))
}

/// Per member: how many masked-in tokens the argmax of the logits gets
/// right, and how many there are.
pub fn masked_accuracy(
    logits: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<(Vec<f64>, usize)> {
    let (p, b, t, _) = logits.dims4()?;
    let guess = logits.argmax(D::Minus1)?.reshape((p, b * t))?;
    let target = target.to_dtype(DType::U32)?.reshape((1, b * t))?;
    let hit = guess.broadcast_eq(&target)?.to_dtype(DType::F32)?;
    let weights = mask.to_dtype(DType::F32)?.reshape((1, b * t))?;
    let right = hit.broadcast_mul(&weights)?.sum(1)?.to_vec1::<f32>()?;
    let count = weights.sum_all()?.to_scalar::<f32>()? as usize;
    Ok((right.into_iter().map(f64::from).collect(), count))
}
