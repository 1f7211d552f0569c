//! RMSNorm (Llama): `y = x · rstd · w`, `rstd = 1 / sqrt(mean(x²) + eps)` per row.

use candle_core::Tensor;

use crate::error::Result;

/// `x [T, C]`, `w [C]` → `(y [T, C], rstd [T, 1])`; `rstd` is what backward needs.
pub fn forward(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    let rstd = x
        .sqr()?
        .mean_keepdim(1)?
        .affine(1.0, eps)?
        .sqrt()?
        .recip()?;
    let y = x.broadcast_mul(&rstd)?.broadcast_mul(w)?;
    Ok((y, rstd))
}

/// Returns `(dx [T, C], dw [C])` for `dy [T, C]`.
///
/// With `x̂ = x · rstd`: `dw = Σ_t dy ⊙ x̂` and
/// `dx = rstd · (dx̂ − x̂ · mean(dx̂ ⊙ x̂))`, `dx̂ = dy ⊙ w`.
pub fn backward(dy: &Tensor, x: &Tensor, w: &Tensor, rstd: &Tensor) -> Result<(Tensor, Tensor)> {
    let xhat = x.broadcast_mul(rstd)?;
    let dw = (dy * &xhat)?.sum(0)?;
    let dxhat = dy.broadcast_mul(w)?;
    let proj = (&dxhat * &xhat)?.mean_keepdim(1)?;
    let dx = (dxhat - xhat.broadcast_mul(&proj)?)?.broadcast_mul(rstd)?;
    Ok((dx, dw))
}
