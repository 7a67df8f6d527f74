//! Checks of what callers pass in (token ids, lengths, activations), so
//! bad input is a clear error rather than a failed or silent lookup.

use candle_core::{DType, Tensor};

use crate::op::Activation;
use crate::{Error, Result};

/// Token ids `[B, T]` with `T ≥ 1`, every id below `vocab`.
pub fn check_ids(what: &str, ids: &Tensor, vocab: usize) -> Result<(usize, usize)> {
    let (b, t) = ids.dims2().map_err(|_| {
        Error::Usage(format!(
            "{what}: expected token ids [batch, time], got {:?}",
            ids.dims()
        ))
    })?;
    if b == 0 || t == 0 {
        return Err(Error::Usage(format!(
            "{what}: empty batch {:?}",
            ids.dims()
        )));
    }
    let max = ids
        .to_dtype(DType::U32)?
        .flatten_all()?
        .max(0)?
        .to_scalar::<u32>()?;
    if max as usize >= vocab {
        return Err(Error::Usage(format!(
            "{what}: token id {max} is outside the vocabulary of {vocab}"
        )));
    }
    Ok((b, t))
}

/// A padding mask must have the shape of its ids.
pub fn check_mask(what: &str, mask: &Tensor, dims: (usize, usize)) -> Result<()> {
    match mask.dims2() {
        Ok(d) if d == dims => Ok(()),
        _ => Err(Error::Usage(format!(
            "{what}: mask {:?} does not match the ids [{}, {}]",
            mask.dims(),
            dims.0,
            dims.1
        ))),
    }
}

/// Host prompts: at least one, none empty, every id below `vocab`.
pub fn check_prompts(what: &str, prompts: &[Vec<u32>], vocab: usize) -> Result<()> {
    if prompts.is_empty() {
        return Err(Error::Usage(format!(
            "{what}: no sentences to generate from"
        )));
    }
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(Error::Usage(format!("{what}: sentence {i} is empty")));
        }
        if let Some(&t) = p.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::Usage(format!(
                "{what}: sentence {i} has token id {t}, outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

/// At least one activation: the population size.
pub fn check_population(acts: &[Activation], seeds: &[u64]) -> Result<usize> {
    if acts.is_empty() || acts.len() != seeds.len() {
        return Err(Error::Usage(format!(
            "a model population needs one activation and one seed per member \
             (got {} activations, {} seeds)",
            acts.len(),
            seeds.len()
        )));
    }
    Ok(acts.len())
}

/// Right-pads host sentences to a `[B, L]` id tensor and its mask, or
/// left-pads them (`left`), with `pad` in the gaps.
pub fn pad_batch(rows: &[Vec<u32>], pad: u32, left: bool) -> (Vec<u32>, Vec<Vec<bool>>, usize) {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * len);
    let mut mask = Vec::with_capacity(rows.len());
    for r in rows {
        let gap = len - r.len();
        let (before, after) = if left { (gap, 0) } else { (0, gap) };
        ids.extend(
            std::iter::repeat_n(pad, before)
                .chain(r.iter().copied())
                .chain(std::iter::repeat_n(pad, after)),
        );
        let m: Vec<bool> = std::iter::repeat_n(false, before)
            .chain(std::iter::repeat_n(true, r.len()))
            .chain(std::iter::repeat_n(false, after))
            .collect();
        mask.push(m);
    }
    (ids, mask, len)
}
