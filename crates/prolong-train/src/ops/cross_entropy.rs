//! Softmax cross-entropy over the vocabulary, one row per labeled token.

use candle_core::{D, Tensor};

use crate::error::Result;

/// `logits [B, V]`, `targets [B]` (u32) → per-row loss `[B]`: `logsumexp(z) − z[target]`.
pub fn forward(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (losses, _) = lse_and_loss(logits, targets)?;
    Ok(losses)
}

/// Loss and its gradient in one pass: returns `(losses [B], dlogits [B, V])`, where
/// `dlogits = dloss · (softmax(z) − onehot(target))` is the gradient of `dloss · Σ losses`.
/// A token-mean loss over `N` labels passes `dloss = 1/N`.
pub fn forward_backward(logits: &Tensor, targets: &Tensor, dloss: f64) -> Result<(Tensor, Tensor)> {
    let (losses, lse) = lse_and_loss(logits, targets)?;
    let b = targets.dims1()?;
    let probs = logits.broadcast_sub(&lse)?.exp()?;
    let minus = Tensor::ones((b, 1), logits.dtype(), logits.device())?.affine(-dloss, 0.0)?;
    let dlogits = probs
        .affine(dloss, 0.0)?
        .scatter_add(&targets.reshape((b, 1))?, &minus, 1)?;
    Ok((losses, dlogits))
}

/// Returns `(losses [B], lse [B, 1])`.
fn lse_and_loss(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let b = targets.dims1()?;
    let m = logits.max_keepdim(D::Minus1)?;
    let lse = (logits
        .broadcast_sub(&m)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + m)?;
    let picked = logits.gather(&targets.reshape((b, 1))?, 1)?;
    Ok(((&lse - picked)?.reshape(b)?, lse))
}
