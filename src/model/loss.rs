//! The training loss: masked token cross-entropy per population member,
//! and masked token accuracy. Both take logits `[P, B, T, V]` (the loss
//! also `[P, B·T, V]`) and targets and a mask `[B, T]` shared by every
//! member.

use candle_core::{DType, Result, Tensor, D};

use super::ops::log_softmax;
use crate::op;

/// Mean cross-entropy over the masked-in tokens, per member (logits
/// `[P, B, T, V]` or `[P, B·T, V]`): returns the
/// differentiable loss `[P]` (f32) and the number of tokens it averages.
/// Back-propagate `loss.sum_all()`: members share no parameters, so each
/// gets the gradient of its own loss. A NaN or Inf loss is returned as is
/// (numerical failure is a value). With no token masked in, the loss is 0.
///
/// f32 logits on the CPU take the fused op ([`op::xent`]: one pass per row
/// forward, one backward); anything else the composed chain
/// [`masked_cross_entropy_composed`].
pub fn masked_cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<(Tensor, usize)> {
    if !op::fusable(logits) {
        return masked_cross_entropy_composed(logits, target, mask);
    }
    let (ids, weights, count) = host_targets(target, mask)?;
    let loss = op::xent::masked_cross_entropy(&rows(logits)?, ids, weights, count)?;
    Ok((loss, count))
}

/// [`masked_cross_entropy`] of the logits `h · wteᵀ` of hidden states
/// `h [P, N, D]` and an output head tied to the token embedding
/// `wte [P, V, D]`. f32 on the CPU takes one fused op for the head's
/// matmul and the loss ([`op::xent::tied_head_cross_entropy`]: the same
/// bits, no logits tensor); anything else the matmul and
/// [`masked_cross_entropy`].
pub fn tied_head_cross_entropy(
    h: &Tensor,
    wte: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<(Tensor, usize)> {
    if !(op::fusable(h) && op::fusable(wte)) {
        return masked_cross_entropy(&h.matmul(&wte.transpose(1, 2)?)?, target, mask);
    }
    let (ids, weights, count) = host_targets(target, mask)?;
    let loss = op::xent::tied_head_cross_entropy(h, wte, ids, weights, count)?;
    Ok((loss, count))
}

/// Target ids, loss weights and the number of tokens masked in, on the host.
fn host_targets(target: &Tensor, mask: &Tensor) -> Result<(Vec<u32>, Vec<f32>, usize)> {
    let ids = target
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let weights = mask.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let count = weights.iter().sum::<f32>() as usize;
    Ok((ids, weights, count))
}

/// [`masked_cross_entropy`] as a chain of candle ops (log-softmax, gather,
/// mask, mean): the path on other devices and dtypes, and the fused op's
/// oracle.
pub fn masked_cross_entropy_composed(
    logits: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<(Tensor, usize)> {
    let logits = rows(logits)?;
    let (p, n, _) = logits.dims3()?;
    let logp = log_softmax(&logits)?;
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

/// Logits as `[P, N, V]`: as given when they are 3-D (no reshape node,
/// whose gradient candle would accumulate into a zeroed copy).
fn rows(logits: &Tensor) -> Result<Tensor> {
    match logits.rank() {
        3 => Ok(logits.clone()),
        _ => {
            let (p, b, t, v) = logits.dims4()?;
            logits.reshape((p, b * t, v))
        }
    }
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
