//! Linear layer without bias: `y = x · Wᵀ`, `W` in the HF layout `[out, in]`.

use candle_core::Tensor;

use crate::error::Result;

/// `x [T, K]`, `w [N, K]` → `y [T, N]`. 2·T·K·N FLOPs.
pub fn forward(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(x.matmul(&w.t()?)?)
}

/// Returns `(dx [T, K], dw [N, K])` for `dy [T, N]`.
pub fn backward(dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor)> {
    let dx = dy.matmul(w)?; // 2·T·N·K FLOPs
    let dw = dy.t()?.matmul(x)?; // 2·T·N·K FLOPs
    Ok((dx, dw))
}
