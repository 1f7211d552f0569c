//! Launchers of the elementwise and row-wise fused kernels: RMSNorm, RoPE, SiLU·mul,
//! cross-entropy over a block of logits rows, and the AdamW update. Each returns `None`
//! when its tensors are not bf16 on a GPU (AdamW: f32 state and a bf16 weight copy).

use candle_core::cuda::cudarc::driver::PushKernelArg;
use candle_core::{DType, Tensor};
use half::bf16;

use super::launch::{Buf, Module, bf16_cuda, driver, elementwise, func, rows, tensor};
use crate::error::Result;

/// Threads per row of the row-wise kernels.
const ROW_THREADS: u32 = 256;

/// RMSNorm forward: `x [T, C]`, `w [C]` → `(y [T, C] bf16, rstd [T, 1] f32)`.
pub fn rmsnorm_forward(x: &Tensor, w: &Tensor, eps: f64) -> Result<Option<(Tensor, Tensor)>> {
    let (Some(dev), Some(_)) = (bf16_cuda(x), bf16_cuda(w)) else {
        return Ok(None);
    };
    let (t, c) = x.dims2()?;
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let mut y = dev.alloc_zeros::<bf16>(t * c)?;
    let mut rstd = dev.alloc_zeros::<f32>(t.max(1))?;
    if t > 0 {
        let (xb, wb) = (Buf::of(&x)?, Buf::of(&w)?);
        let (xv, wv) = (xb.view::<bf16>()?, wb.view::<bf16>()?);
        let (stream, f) = func(&dev, Module::Norm, "rmsnorm_fwd")?;
        let (ci, e) = (c as i32, eps as f32);
        let mut b = stream.launch_builder(&f);
        b.arg(&xv)
            .arg(&wv)
            .arg(&mut y)
            .arg(&mut rstd)
            .arg(&ci)
            .arg(&e);
        driver(unsafe { b.launch(rows(t, ROW_THREADS)) })?;
    }
    let rstd = tensor(&dev, rstd, t.max(1))
        .narrow(0, 0, t)?
        .reshape((t, 1))?;
    Ok(Some((tensor(&dev, y, (t, c)), rstd)))
}

/// RMSNorm backward: `(dx [T, C] bf16, dw [C] f32)`; `rstd` as from the forward.
pub fn rmsnorm_backward(
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    rstd: &Tensor,
) -> Result<Option<(Tensor, Tensor)>> {
    let (Some(dev), Some(_), Some(_)) = (bf16_cuda(x), bf16_cuda(w), bf16_cuda(dy)) else {
        return Ok(None);
    };
    let (t, c) = x.dims2()?;
    let rstd = rstd.to_dtype(DType::F32)?.contiguous()?;
    let (dy, x, w) = (dy.contiguous()?, x.contiguous()?, w.contiguous()?);
    let mut dx = dev.alloc_zeros::<bf16>(t * c)?;
    let mut dw = dev.alloc_zeros::<f32>(c)?;
    if t > 0 {
        let (db, xb, wb, rb) = (Buf::of(&dy)?, Buf::of(&x)?, Buf::of(&w)?, Buf::of(&rstd)?);
        let (dyv, xv, wv) = (db.view::<bf16>()?, xb.view::<bf16>()?, wb.view::<bf16>()?);
        let rv = rb.view::<f32>()?;
        let (stream, f) = func(&dev, Module::Norm, "rmsnorm_bwd")?;
        let ci = c as i32;
        let mut b = stream.launch_builder(&f);
        b.arg(&dyv)
            .arg(&xv)
            .arg(&wv)
            .arg(&rv)
            .arg(&mut dx)
            .arg(&mut dw)
            .arg(&ci);
        driver(unsafe { b.launch(rows(t, ROW_THREADS)) })?;
    }
    // dw is a sum over the tokens: it stays f32, as `ops::precision` rules.
    let dw = tensor(&dev, dw, c);
    Ok(Some((tensor(&dev, dx, (t, c)), dw)))
}

/// RoPE rotation of `x [T, H·D]` by the tables `cos, sin [T, 1, D/2]` (any float dtype;
/// `sin` negated for the backward), in a copy of `x`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, head_dim: usize) -> Result<Option<Tensor>> {
    let Some(dev) = bf16_cuda(x) else {
        return Ok(None);
    };
    let (t, width) = x.dims2()?;
    // A fresh copy: the kernel rotates in place.
    let y = x.copy()?;
    let (cos, sin) = (
        cos.to_dtype(DType::F32)?.contiguous()?,
        sin.to_dtype(DType::F32)?.contiguous()?,
    );
    let n = t * width / 2;
    if n > 0 {
        let (yb, cb, sb) = (Buf::of(&y)?, Buf::of(&cos)?, Buf::of(&sin)?);
        let (yv, cv, sv) = (yb.view::<bf16>()?, cb.view::<f32>()?, sb.view::<f32>()?);
        let (stream, f) = func(&dev, Module::Rope, "rope")?;
        let (ti, hi, di, sign) = (t as i32, (width / head_dim) as i32, head_dim as i32, 1f32);
        let mut b = stream.launch_builder(&f);
        b.arg(&yv)
            .arg(&cv)
            .arg(&sv)
            .arg(&ti)
            .arg(&hi)
            .arg(&di)
            .arg(&sign);
        driver(unsafe { b.launch(elementwise(n)) })?;
    }
    Ok(Some(y))
}

/// `h = silu(g) ⊙ u` for `g, u [T, F]`.
pub fn silu_mul_forward(g: &Tensor, u: &Tensor) -> Result<Option<Tensor>> {
    let (Some(dev), Some(_)) = (bf16_cuda(g), bf16_cuda(u)) else {
        return Ok(None);
    };
    let (g, u) = (g.contiguous()?, u.contiguous()?);
    let n = g.elem_count();
    let mut h = dev.alloc_zeros::<bf16>(n.max(1))?;
    if n > 0 {
        let (gb, ub) = (Buf::of(&g)?, Buf::of(&u)?);
        let (gv, uv) = (gb.view::<bf16>()?, ub.view::<bf16>()?);
        let (stream, f) = func(&dev, Module::Mlp, "silu_mul_fwd")?;
        let mut b = stream.launch_builder(&f);
        b.arg(&gv).arg(&uv).arg(&mut h).arg(&n);
        driver(unsafe { b.launch(elementwise(n)) })?;
    }
    Ok(Some(
        tensor(&dev, h, n.max(1))
            .narrow(0, 0, n)?
            .reshape(g.dims())?,
    ))
}

/// `(dg, du)` of [`silu_mul_forward`] for `dh`.
pub fn silu_mul_backward(dh: &Tensor, g: &Tensor, u: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    let (Some(dev), Some(_), Some(_)) = (bf16_cuda(dh), bf16_cuda(g), bf16_cuda(u)) else {
        return Ok(None);
    };
    let (dh, g, u) = (dh.contiguous()?, g.contiguous()?, u.contiguous()?);
    let n = g.elem_count();
    let mut dg = dev.alloc_zeros::<bf16>(n.max(1))?;
    let mut du = dev.alloc_zeros::<bf16>(n.max(1))?;
    if n > 0 {
        let (db, gb, ub) = (Buf::of(&dh)?, Buf::of(&g)?, Buf::of(&u)?);
        let (dv, gv, uv) = (db.view::<bf16>()?, gb.view::<bf16>()?, ub.view::<bf16>()?);
        let (stream, f) = func(&dev, Module::Mlp, "silu_mul_bwd")?;
        let mut b = stream.launch_builder(&f);
        b.arg(&dv)
            .arg(&gv)
            .arg(&uv)
            .arg(&mut dg)
            .arg(&mut du)
            .arg(&n);
        driver(unsafe { b.launch(elementwise(n)) })?;
    }
    let shape = |s| -> Result<Tensor> {
        Ok(tensor(&dev, s, n.max(1))
            .narrow(0, 0, n)?
            .reshape(g.dims())?)
    };
    Ok(Some((shape(dg)?, shape(du)?)))
}

/// Cross-entropy of a block of logits rows `[B, V]` (bf16) against `targets [B]` (u32):
/// `(losses [B] f32, dlogits [B, V] bf16 = dloss · (softmax − onehot))`. The losses stay
/// f32: summed over a 64K-token sequence, bf16 row losses would blur the loss curve.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    dloss: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    let Some(dev) = bf16_cuda(logits) else {
        return Ok(None);
    };
    let (rows_n, vocab) = logits.dims2()?;
    let logits = logits.contiguous()?;
    let targets = targets.to_dtype(DType::U32)?.contiguous()?;
    let mut loss = dev.alloc_zeros::<f32>(rows_n.max(1))?;
    let mut dlogits = dev.alloc_zeros::<bf16>((rows_n * vocab).max(1))?;
    if rows_n > 0 {
        let (lb, tb) = (Buf::of(&logits)?, Buf::of(&targets)?);
        let (lv, tv) = (lb.view::<bf16>()?, tb.view::<u32>()?);
        let (stream, f) = func(&dev, Module::Loss, "cross_entropy")?;
        let (vi, scale) = (vocab as i32, dloss as f32);
        let mut b = stream.launch_builder(&f);
        b.arg(&lv)
            .arg(&tv)
            .arg(&mut loss)
            .arg(&mut dlogits)
            .arg(&vi)
            .arg(&scale);
        driver(unsafe { b.launch(rows(rows_n, ROW_THREADS * 4)) })?;
    }
    let loss = tensor(&dev, loss, rows_n.max(1)).narrow(0, 0, rows_n)?;
    let dlogits = tensor(&dev, dlogits, (rows_n * vocab).max(1))
        .narrow(0, 0, rows_n * vocab)?
        .reshape((rows_n, vocab))?;
    Ok(Some((loss, dlogits)))
}

/// The constants of one AdamW step (as `optim`'s: decay = 1 − lr·wd or 1,
/// step_size = lr / (1 − β₁ᵗ), inv_sqrt_bc2 = 1 / sqrt(1 − β₂ᵗ)).
#[derive(Debug, Clone, Copy)]
pub struct AdamwStep {
    pub decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub inv_sqrt_bc2: f32,
    pub eps: f32,
    pub step_size: f32,
}

/// One AdamW update in place of the f32 `master`, `exp_avg`, `exp_avg_sq` (contiguous, on
/// the GPU) from the f32 gradient `grad`; returns the bf16 compute copy of the weights.
/// `None` when the state is not f32 on a GPU.
pub fn adamw(
    master: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
    step: AdamwStep,
) -> Result<Option<Tensor>> {
    let candle_core::Device::Cuda(dev) = master.device() else {
        return Ok(None);
    };
    let state = [master, exp_avg, exp_avg_sq, grad];
    if state
        .iter()
        .any(|t| t.dtype() != DType::F32 || !t.is_contiguous() || !t.device().is_cuda())
        || state.iter().any(|t| t.dims() != master.dims())
    {
        return Ok(None);
    }
    let n = master.elem_count();
    let mut p16 = dev.alloc_zeros::<bf16>(n.max(1))?;
    if n > 0 {
        let (pb, mb, vb, gb) = (
            Buf::of(master)?,
            Buf::of(exp_avg)?,
            Buf::of(exp_avg_sq)?,
            Buf::of(grad)?,
        );
        let (pv, mv, vv, gv) = (
            pb.view::<f32>()?,
            mb.view::<f32>()?,
            vb.view::<f32>()?,
            gb.view::<f32>()?,
        );
        let (stream, f) = func(dev, Module::Adamw, "adamw")?;
        let s = step;
        let mut b = stream.launch_builder(&f);
        // The kernel writes master and moments in place through these views.
        b.arg(&pv).arg(&mv).arg(&vv).arg(&gv).arg(&mut p16).arg(&n);
        b.arg(&s.decay)
            .arg(&s.beta1)
            .arg(&s.beta2)
            .arg(&s.inv_sqrt_bc2)
            .arg(&s.eps)
            .arg(&s.step_size);
        driver(unsafe { b.launch(elementwise(n)) })?;
    }
    Ok(Some(
        tensor(dev, p16, n.max(1))
            .narrow(0, 0, n)?
            .reshape(master.dims())?,
    ))
}
