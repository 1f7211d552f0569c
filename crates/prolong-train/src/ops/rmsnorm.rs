//! RMSNorm (Llama): `y = x · rstd · w`, `rstd = 1 / sqrt(mean(x²) + eps)` per row.

use candle_core::Tensor;

use crate::error::Result;
use crate::ops::{cpu, precision};

/// `x [T, C]`, `w [C]` → `(y [T, C], rstd [T, 1])`; `rstd` is what backward needs.
/// `y` is in `x`'s dtype, `rstd` in its accumulation dtype (see [`precision`]).
pub fn forward(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::fused::rmsnorm_forward(x, w, eps)? {
        return Ok(out);
    }
    let dtype = x.dtype();
    let (y, rstd) = forward_widened(&precision::widen(x)?, &precision::widen(w)?, eps)?;
    Ok((precision::narrow(y, dtype)?, rstd))
}

/// [`forward`] on inputs already in their accumulation dtype.
fn forward_widened(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    if let (Ok((t, c)), Ok(cw)) = (x.dims2(), w.dims1())
        && c == cw
        && c > 0
    {
        let fused = cpu::with_f32(x, |xs| {
            cpu::with_f32(w, |ws| {
                let rstd: Vec<f32> = xs.chunks(c).map(|r| rstd_of(r, eps)).collect();
                let mut y = vec![0f32; xs.len()];
                cpu::par_rows(&mut y, c, |r0, rows| {
                    for (k, yr) in rows.chunks_mut(c).enumerate() {
                        let (xr, rs) = (&xs[(r0 + k) * c..(r0 + k + 1) * c], rstd[r0 + k]);
                        for ((y, &x), &w) in yr.iter_mut().zip(xr).zip(ws) {
                            *y = x * rs * w;
                        }
                    }
                });
                (y, rstd)
            })
        })?;
        if let Some(Some((y, rstd))) = fused.transpose()? {
            return Ok((cpu::tensor(y, &[t, c])?, cpu::tensor(rstd, &[t, 1])?));
        }
    }
    let rstd = x
        .sqr()?
        .mean_keepdim(1)?
        .affine(1.0, eps)?
        .sqrt()?
        .recip()?;
    let y = x.broadcast_mul(&rstd)?.broadcast_mul(w)?;
    Ok((y, rstd))
}

/// Returns `(dx [T, C], dw [C])` for `dy [T, C]`: `dx` in `dy`'s dtype, `dw` (a sum over
/// the tokens) in the accumulation dtype.
///
/// With `x̂ = x · rstd`: `dw = Σ_t dy ⊙ x̂` and
/// `dx = rstd · (dx̂ − x̂ · mean(dx̂ ⊙ x̂))`, `dx̂ = dy ⊙ w`.
pub fn backward(dy: &Tensor, x: &Tensor, w: &Tensor, rstd: &Tensor) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::fused::rmsnorm_backward(dy, x, w, rstd)? {
        return Ok(out);
    }
    let dtype = dy.dtype();
    let w_ = precision::widen;
    let (dx, dw) = backward_widened(&w_(dy)?, &w_(x)?, &w_(w)?, &w_(rstd)?)?;
    Ok((precision::narrow(dx, dtype)?, dw))
}

/// [`backward`] on inputs already in their accumulation dtype.
fn backward_widened(
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    rstd: &Tensor,
) -> Result<(Tensor, Tensor)> {
    if let (Ok((t, c)), Ok(cw)) = (x.dims2(), w.dims1())
        && c == cw
        && c > 0
        && dy.dims() == x.dims()
        && rstd.elem_count() == t
    {
        let fused = cpu::with_f32(dy, |dys| {
            cpu::with_f32(x, |xs| {
                cpu::with_f32(w, |ws| {
                    cpu::with_f32(rstd, |rss| backward_f32(dys, xs, ws, rss, c))
                })
            })
        })?;
        let fused = fused.transpose()?.flatten().transpose()?.flatten();
        if let Some(Some((dx, dw))) = fused.transpose()? {
            return Ok((cpu::tensor(dx, &[t, c])?, cpu::tensor(dw, &[c])?));
        }
    }
    let xhat = x.broadcast_mul(rstd)?;
    let dw = (dy * &xhat)?.sum(0)?;
    let dxhat = dy.broadcast_mul(w)?;
    let proj = (&dxhat * &xhat)?.mean_keepdim(1)?;
    let dx = (dxhat - xhat.broadcast_mul(&proj)?)?.broadcast_mul(rstd)?;
    Ok((dx, dw))
}

/// `1 / sqrt(mean(x²) + eps)` of one row.
fn rstd_of(x: &[f32], eps: f64) -> f32 {
    1.0 / (cpu::dot(x, x) / x.len() as f32 + eps as f32).sqrt()
}

/// Fused backward: `dx` rows in parallel, `dw` summed over rows in order on one thread.
fn backward_f32(dy: &[f32], x: &[f32], w: &[f32], rstd: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let mut dx = vec![0f32; x.len()];
    cpu::par_rows(&mut dx, c, |r0, rows| {
        let mut dxhat = vec![0f32; c];
        for (k, dxr) in rows.chunks_mut(c).enumerate() {
            let r = r0 + k;
            let (xr, dyr, rs) = (&x[r * c..(r + 1) * c], &dy[r * c..(r + 1) * c], rstd[r]);
            for ((d, &g), &w) in dxhat.iter_mut().zip(dyr).zip(w) {
                *d = g * w;
            }
            // mean(dx̂ ⊙ x̂) = rstd · mean(dx̂ ⊙ x)
            let proj = rs * cpu::dot(&dxhat, xr) / c as f32;
            for ((o, &d), &x) in dxr.iter_mut().zip(&dxhat).zip(xr) {
                *o = (d - x * rs * proj) * rs;
            }
        }
    });
    let mut dw = vec![0f32; c];
    for ((xr, dyr), &rs) in x.chunks(c).zip(dy.chunks(c)).zip(rstd) {
        for ((o, &x), &g) in dw.iter_mut().zip(xr).zip(dyr) {
            *o += g * x * rs;
        }
    }
    (dx, dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    use crate::ops::test_values::{max_abs_diff, values};

    /// The fused CPU f32 paths against the generic candle-ops paths (taken by f64).
    #[test]
    fn fused_f32_matches_generic_f64() {
        let f = |x: &Tensor| x.to_dtype(DType::F32).unwrap();
        let (x, w, dy) = (
            values(&[37, 96], 1),
            values(&[96], 2).affine(0.2, 1.0).unwrap(),
            values(&[37, 96], 3),
        );
        let (y64, r64) = forward(&x, &w, 1e-5).unwrap();
        let (y32, r32) = forward(&f(&x), &f(&w), 1e-5).unwrap();
        assert!(max_abs_diff(&y32, &y64) < 1e-5 && max_abs_diff(&r32, &r64) < 1e-5);
        let (dx64, dw64) = backward(&dy, &x, &w, &r64).unwrap();
        let (dx32, dw32) = backward(&f(&dy), &f(&x), &f(&w), &r32).unwrap();
        assert!(
            max_abs_diff(&dx32, &dx64) < 1e-5,
            "{}",
            max_abs_diff(&dx32, &dx64)
        );
        assert!(
            max_abs_diff(&dw32, &dw64) < 1e-4,
            "{}",
            max_abs_diff(&dw32, &dw64)
        );

        let (g, u, dh) = (
            values(&[37, 96], 4),
            values(&[37, 96], 5),
            values(&[37, 96], 6),
        );
        let g = g.affine(4.0, 0.0).unwrap();
        let h64 = crate::ops::silu_mul::forward(&g, &u).unwrap();
        let h32 = crate::ops::silu_mul::forward(&f(&g), &f(&u)).unwrap();
        assert!(max_abs_diff(&h32, &h64) < 1e-5);
        let (dg64, du64) = crate::ops::silu_mul::backward(&dh, &g, &u).unwrap();
        let (dg32, du32) = crate::ops::silu_mul::backward(&f(&dh), &f(&g), &f(&u)).unwrap();
        assert!(max_abs_diff(&dg32, &dg64) < 1e-5 && max_abs_diff(&du32, &du64) < 1e-5);
    }
}
