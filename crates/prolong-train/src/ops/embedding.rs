//! Token embedding lookup.

use candle_core::Tensor;

use crate::error::Result;

/// `ids [T]` (u32) into `table [V, C]` → `[T, C]`.
pub fn forward(ids: &Tensor, table: &Tensor) -> Result<Tensor> {
    Ok(table.index_select(ids, 0)?)
}

/// Gradient of the table for `dy [T, C]`: row `v` gets the sum of `dy[t]` over `ids[t] == v`.
pub fn backward(dy: &Tensor, ids: &Tensor, vocab_size: usize) -> Result<Tensor> {
    let (_, c) = dy.dims2()?;
    let zeros = Tensor::zeros((vocab_size, c), dy.dtype(), dy.device())?;
    Ok(zeros.index_add(ids, dy, 0)?)
}
