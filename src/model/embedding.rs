//! Embedding tables `[P, V, D]` and their lookups: ids shared by every
//! member (training: common random numbers) or one row of ids per member
//! (generation, where members choose different tokens).

use candle_core::{DType, Result, Tensor};

/// Rows of `table` `[P, V, D]` for ids `[N]` (u32) shared by all members:
/// `[P, N, D]`. Out-of-range ids are an error of the lookup itself.
pub fn lookup_shared(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    table.index_select(&ids.flatten_all()?.to_dtype(DType::U32)?, 1)
}

/// Rows of `table` `[P, V, D]` for per-member ids (host values, member
/// `p`'s in `ids[p]`, all of equal length N, each below V): `[P, N, D]`.
pub fn lookup_members(table: &Tensor, ids: &[Vec<u32>]) -> Result<Tensor> {
    let (p, v, d) = table.dims3()?;
    let n = ids.first().map_or(0, Vec::len);
    let flat: Vec<u32> = ids
        .iter()
        .enumerate()
        .flat_map(|(m, row)| row.iter().map(move |&t| t + (m * v) as u32))
        .collect();
    let idx = Tensor::from_vec(flat, p * n, table.device())?;
    table
        .reshape((p * v, d))?
        .index_select(&idx, 0)?
        .reshape((p, n, d))
}
