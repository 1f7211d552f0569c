//! Token embedding lookup.

use candle_core::Tensor;

use crate::error::Result;
use crate::ops::precision;

/// `ids [T]` (u32) into `table [V, C]` → `[T, C]`.
pub fn forward(ids: &Tensor, table: &Tensor) -> Result<Tensor> {
    Ok(table.index_select(ids, 0)?)
}

/// Gradient of the table for `dy [T, C]`: row `v` gets the sum of `dy[t]` over `ids[t] == v`,
/// summed in the accumulation dtype (f32 for a bf16 `dy`; see [`precision`]).
pub fn backward(dy: &Tensor, ids: &Tensor, vocab_size: usize) -> Result<Tensor> {
    let (_, c) = dy.dims2()?;
    let dy = precision::widen(dy)?;
    let zeros = Tensor::zeros((vocab_size, c), dy.dtype(), dy.device())?;
    Ok(zeros.index_add(ids, &dy, 0)?)
}
