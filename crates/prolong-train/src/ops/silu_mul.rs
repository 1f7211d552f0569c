//! The SwiGLU gate of the Llama MLP: `h = silu(g) ⊙ u`.

use candle_core::Tensor;

use crate::error::Result;
use crate::ops::{cpu, precision};

/// `g, u [T, F]` → `h [T, F]`.
pub fn forward(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::fused::silu_mul_forward(g, u)? {
        return Ok(out);
    }
    let dtype = g.dtype();
    let h = forward_widened(&precision::widen(g)?, &precision::widen(u)?)?;
    precision::narrow(h, dtype)
}

/// [`forward`] on inputs in their accumulation dtype.
fn forward_widened(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    if g.dims() == u.dims() {
        let fused = cpu::with_f32(g, |gs| {
            cpu::with_f32(u, |us| {
                let mut out = vec![0f32; gs.len()];
                cpu::par_rows(&mut out, 1024, |r0, o| {
                    let s = r0 * 1024;
                    for ((o, &g), &u) in o.iter_mut().zip(&gs[s..]).zip(&us[s..]) {
                        *o = g * cpu::sigmoid(g) * u;
                    }
                });
                out
            })
        })?;
        if let Some(Some(h)) = fused.transpose()? {
            return cpu::tensor(h, g.dims());
        }
    }
    Ok((g.silu()? * u)?)
}

/// Returns `(dg, du)` for `dh`. With `σ = sigmoid(g)`:
/// `du = dh ⊙ g σ` and `dg = dh ⊙ u ⊙ σ (1 + g (1 − σ))`.
pub fn backward(dh: &Tensor, g: &Tensor, u: &Tensor) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::fused::silu_mul_backward(dh, g, u)? {
        return Ok(out);
    }
    let dtype = dh.dtype();
    let w = precision::widen;
    let (dg, du) = backward_widened(&w(dh)?, &w(g)?, &w(u)?)?;
    Ok((precision::narrow(dg, dtype)?, precision::narrow(du, dtype)?))
}

/// [`backward`] on inputs in their accumulation dtype.
fn backward_widened(dh: &Tensor, g: &Tensor, u: &Tensor) -> Result<(Tensor, Tensor)> {
    if g.dims() == u.dims() && dh.dims() == g.dims() {
        let fused = cpu::with_f32(dh, |ds| {
            cpu::with_f32(g, |gs| {
                cpu::with_f32(u, |us| {
                    let (mut dg, mut du) = (vec![0f32; gs.len()], vec![0f32; gs.len()]);
                    cpu::par_rows2(&mut dg, &mut du, 1024, |r0, dgc, duc| {
                        let s = r0 * 1024;
                        let it = dgc.iter_mut().zip(duc.iter_mut());
                        for ((((dg, du), &d), &g), &u) in
                            it.zip(&ds[s..]).zip(&gs[s..]).zip(&us[s..])
                        {
                            let sig = cpu::sigmoid(g);
                            let silu = g * sig;
                            *du = d * silu;
                            *dg = d * u * (sig + silu - silu * sig);
                        }
                    });
                    (dg, du)
                })
            })
        })?;
        let fused = fused.transpose()?.flatten().transpose()?.flatten();
        if let Some((dg, du)) = fused {
            return Ok((cpu::tensor(dg, g.dims())?, cpu::tensor(du, g.dims())?));
        }
    }
    let sig = g.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
    let silu = (g * &sig)?;
    let du = (dh * &silu)?;
    // σ (1 + g (1 − σ)) = σ + silu − silu·σ
    let dsilu = ((&sig + &silu)? - (&silu * &sig)?)?;
    let dg = ((dh * u)? * dsilu)?;
    Ok((dg, du))
}
