//! Softmax cross-entropy over the vocabulary, one row per labeled token.
//!
//! Two implementations of the same math:
//! * a fused CPU path for contiguous f32 logits: per row one read pass (max), one pass
//!   writing `exp(z − max)` straight into the gradient buffer while summing it, and one
//!   pass scaling it in place — one exp per element, no `[B, V]` temporaries besides the
//!   gradient itself — with rows split over candle's CPU thread count;
//! * the generic candle-ops path for every other device/dtype (CUDA, f64 gradchecks).

use candle_core::{D, DType, Device, Tensor};

use crate::error::Result;
use crate::ops::cpu::{LANES, exp_into, exp_nonpos};
use crate::ops::precision;

/// `logits [B, V]`, `targets [B]` (u32) → per-row loss `[B]`: `logsumexp(z) − z[target]`,
/// computed and returned in the logits' accumulation dtype (f32 for bf16 logits).
pub fn forward(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logits = &precision::widen(logits)?;
    if let Some(out) = fused_cpu(logits, targets, None)? {
        return Ok(out.0);
    }
    let (losses, _) = lse_and_loss(logits, targets)?;
    Ok(losses)
}

/// Loss and its gradient in one pass: returns `(losses [B], dlogits [B, V])`, where
/// `dlogits = dloss · (softmax(z) − onehot(target))` is the gradient of `dloss · Σ losses`.
/// A token-mean loss over `N` labels passes `dloss = 1/N`. The losses are in the
/// accumulation dtype, `dlogits` in the logits' dtype (see [`precision`]).
pub fn forward_backward(logits: &Tensor, targets: &Tensor, dloss: f64) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::fused::cross_entropy(logits, targets, dloss)? {
        return Ok(out);
    }
    let dtype = logits.dtype();
    let (losses, dlogits) = forward_backward_widened(&precision::widen(logits)?, targets, dloss)?;
    Ok((losses, precision::narrow(dlogits, dtype)?))
}

/// [`forward_backward`] on logits in their accumulation dtype.
fn forward_backward_widened(
    logits: &Tensor,
    targets: &Tensor,
    dloss: f64,
) -> Result<(Tensor, Tensor)> {
    if let Some((losses, dlogits)) = fused_cpu(logits, targets, Some(dloss))? {
        return Ok((losses, dlogits.expect("gradient requested")));
    }
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

/// Fused CPU f32 path; `None` when it does not apply (other device/dtype, strided logits,
/// a target out of range — the generic path then reports the error).
#[allow(clippy::type_complexity)]
fn fused_cpu(
    logits: &Tensor,
    targets: &Tensor,
    dloss: Option<f64>,
) -> Result<Option<(Tensor, Option<Tensor>)>> {
    if !logits.device().is_cpu() || logits.dtype() != DType::F32 || logits.rank() != 2 {
        return Ok(None);
    }
    let (b, v) = logits.dims2()?;
    if v == 0 || targets.dims1()? != b {
        return Ok(None);
    }
    let tgt: Vec<u32> = targets.to_dtype(DType::U32)?.to_vec1()?;
    if tgt.iter().any(|&t| t as usize >= v) {
        return Ok(None);
    }
    let fused = super::cpu::with_f32(logits, |z| fused_rows(z, &tgt, b, v, dloss))?;
    let Some((losses, grad)) = fused else {
        return Ok(None);
    };
    let losses = Tensor::from_vec(losses, b, &Device::Cpu)?;
    let grad = grad
        .map(|g| Tensor::from_vec(g, (b, v), &Device::Cpu))
        .transpose()?;
    Ok(Some((losses, grad)))
}

/// The losses (and with `dloss` the gradient) of the `b` rows of `v` logits `z`, the
/// rows split over candle's CPU threads.
fn fused_rows(
    z: &[f32],
    tgt: &[u32],
    b: usize,
    v: usize,
    dloss: Option<f64>,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut losses = vec![0f32; b];
    let mut grad = dloss.map(|_| vec![0f32; b * v]);
    let scale = dloss.unwrap_or(0.0) as f32;

    let threads = candle_core::utils::get_num_threads()
        .clamp(1, b.max(1))
        .min((b * v / (1 << 16)).max(1));
    let rows_per = b.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let mut loss_chunks = losses.chunks_mut(rows_per);
        let mut grad_chunks = grad.as_mut().map(|g| g.chunks_mut(rows_per * v));
        for (i, (zc, tc)) in z.chunks(rows_per * v).zip(tgt.chunks(rows_per)).enumerate() {
            let lc = loss_chunks.next().expect("one loss chunk per row chunk");
            let gc = grad_chunks.as_mut().map(|g| g.next().expect("grad chunk"));
            let work = move || rows(zc, tc, lc, gc, v, scale);
            if i + 1 == threads.min(b.div_ceil(rows_per)) {
                work(); // the last chunk on this thread
            } else {
                s.spawn(work);
            }
        }
    });
    (losses, grad)
}

/// Rows of `z` (`v` wide): losses into `loss`, and `scale · (softmax − onehot)` into `grad`.
fn rows(
    z: &[f32],
    tgt: &[u32],
    loss: &mut [f32],
    mut grad: Option<&mut [f32]>,
    v: usize,
    scale: f32,
) {
    for (r, (&t, l)) in tgt.iter().zip(loss.iter_mut()).enumerate() {
        let zr = &z[r * v..(r + 1) * v];
        let (m, finite) = max_and_check(zr);
        let t = t as usize;
        match grad.as_deref_mut() {
            None => {
                let sum = sum_exp(zr, m);
                *l = if finite {
                    m + sum.ln() - zr[t]
                } else {
                    f32::NAN
                };
            }
            Some(g) => {
                let gr = &mut g[r * v..(r + 1) * v];
                let sum = exp_into(zr, m, gr);
                *l = if finite {
                    m + sum.ln() - zr[t]
                } else {
                    f32::NAN
                };
                let k = scale / sum;
                for x in gr.iter_mut() {
                    *x *= k;
                }
                gr[t] -= scale;
                if !finite {
                    gr.fill(f32::NAN);
                }
            }
        }
    }
}

/// Row max, and whether every entry is finite.
fn max_and_check(z: &[f32]) -> (f32, bool) {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut acc = [0f32; LANES]; // 0·x is NaN exactly when x is not finite
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            mx[i] = if c[i] > mx[i] { c[i] } else { mx[i] };
            acc[i] += c[i] * 0.0;
        }
    }
    let mut m = mx.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut a: f32 = acc.iter().sum();
    for &x in rest {
        m = m.max(x);
        a += x * 0.0;
    }
    (m, a == 0.0)
}

fn sum_exp(z: &[f32], m: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += exp_nonpos(c[i] - m);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| exp_nonpos(x - m)).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_matches_generic() {
        let (b, v) = (37, 1001);
        let z: Vec<f32> = (0..b * v)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 20.0)
            .collect();
        let logits = Tensor::from_vec(z, (b, v), &Device::Cpu).unwrap();
        let t: Vec<u32> = (0..b as u32).map(|i| i * 131 % v as u32).collect();
        let targets = Tensor::new(t, &Device::Cpu).unwrap();
        let (l, g) = fused_cpu(&logits, &targets, Some(0.25)).unwrap().unwrap();
        let g = g.unwrap();
        let (l2, lse) = lse_and_loss(&logits, &targets).unwrap();
        let probs = logits.broadcast_sub(&lse).unwrap().exp().unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(diff(&l, &l2) < 1e-5);
        let onehot = (g.affine(4.0, 0.0).unwrap() - probs).unwrap(); // −onehot
        let s = onehot.sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((s + b as f32).abs() < 1e-3, "{s}");
        let l1 = forward(&logits, &targets).unwrap();
        assert!(diff(&l1, &l2) < 1e-5);
    }
}
