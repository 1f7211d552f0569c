//! Head layouts: token rows with heads side by side, and the per-kv-head
//! stacks the tiles multiply.

use candle_core::Tensor;

use super::Heads;
use crate::error::Result;

/// `[L, H·D]` → `[KV, L·G, D]` (query heads of one kv head stacked, token-major).
pub(super) fn q_heads(x: &Tensor, h: &Heads) -> Result<Tensor> {
    let l = x.dims()[0];
    Ok(x.reshape((l, h.n_kv_head, h.group(), h.head_dim))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((h.n_kv_head, l * h.group(), h.head_dim))?)
}

/// `[KV, L·G, D]` → `[L, H·D]`.
pub(super) fn q_rows(x: &Tensor, h: &Heads, l: usize) -> Result<Tensor> {
    Ok(x.reshape((h.n_kv_head, l, h.group(), h.head_dim))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((l, h.n_head * h.head_dim))?)
}

/// `[L, KV·D]` → `[KV, L, D]`.
pub(super) fn kv_heads(x: &Tensor, h: &Heads) -> Result<Tensor> {
    let l = x.dims()[0];
    Ok(x.reshape((l, h.n_kv_head, h.head_dim))?
        .transpose(0, 1)?
        .contiguous()?)
}

/// `[KV, L, D]` → `[L, KV·D]`.
pub(super) fn kv_rows(x: &Tensor, h: &Heads, l: usize) -> Result<Tensor> {
    Ok(x.transpose(0, 1)?
        .contiguous()?
        .reshape((l, h.n_kv_head * h.head_dim))?)
}

pub(super) fn cat(mut parts: Vec<Tensor>, dim: usize) -> Result<Tensor> {
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    Ok(Tensor::cat(&parts, dim)?)
}
