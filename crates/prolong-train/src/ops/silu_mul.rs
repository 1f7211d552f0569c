//! The SwiGLU gate of the Llama MLP: `h = silu(g) ⊙ u`.

use candle_core::Tensor;

use crate::error::Result;

/// `g, u [T, F]` → `h [T, F]`.
pub fn forward(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    Ok((g.silu()? * u)?)
}

/// Returns `(dg, du)` for `dh`. With `σ = sigmoid(g)`:
/// `du = dh ⊙ g σ` and `dg = dh ⊙ u ⊙ σ (1 + g (1 − σ))`.
pub fn backward(dh: &Tensor, g: &Tensor, u: &Tensor) -> Result<(Tensor, Tensor)> {
    let sig = g.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
    let silu = (g * &sig)?;
    let du = (dh * &silu)?;
    // σ (1 + g (1 − σ)) = σ + silu − silu·σ
    let dsilu = ((&sig + &silu)? - (&silu * &sig)?)?;
    let dg = ((dh * u)? * dsilu)?;
    Ok((dg, du))
}
