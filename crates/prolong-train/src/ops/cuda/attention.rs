//! Launchers of the fused varlen FlashAttention-2 kernels (kernels/attention.cu) behind
//! `ops::attention::{forward, backward}` for bf16 tensors on a GPU.
//!
//! Same contract as the CPU path: `q [T, H·D]`, `k, v [T, KV·D]`, documents `segments`
//! tiling `[0, T)` (one-token documents included, as `cu_seqlens` entries of length 1).
//! The backward takes only the inputs (the op seam saves nothing), so it first reruns
//! the forward for the output and the log-sum-exp it needs; `dq` is accumulated in f32.

use candle_core::cuda::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CudaDevice, DType, Tensor};
use half::bf16;

use super::launch::{Buf, Module, bf16_cuda, driver, func, shape_err, tensor, upload};
use crate::config::{AttentionInputs, Heads};
use crate::error::Result;
use prolong_packed::CuSeqlens;

/// Query rows per forward block (`FWD_BR` in attention.cu).
const QUERY_TILE: usize = 64;
/// Keys per backward block (`KT`).
const KEY_TILE: usize = 32;
/// Threads per block of both kernels (4 warps).
const THREADS: u32 = 128;

/// The fused forward, or `None` when the inputs are not bf16 on a GPU or the head dim has
/// no kernel (64 and 128 have).
pub fn forward(x: AttentionInputs<'_>) -> Result<Option<Tensor>> {
    let Some(dev) = applies(&[x.q, x.k, x.v], x.heads) else {
        return Ok(None);
    };
    let cu = cu_seqlens(x.segments)?;
    Ok(Some(run_forward(&dev, x, &cu)?.0))
}

/// The fused backward: `(dq, dk, dv)`, or `None` as for [`forward`].
pub fn backward(dout: &Tensor, x: AttentionInputs<'_>) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let AttentionInputs { q, k, v, heads, .. } = x;
    let Some(dev) = applies(&[dout, q, k, v], heads) else {
        return Ok(None);
    };
    let cu = cu_seqlens(x.segments)?;
    let (o, lse) = run_forward(&dev, x, &cu)?;
    let (t, h, kvh, d) = (q.dims()[0], heads.n_head, heads.n_kv_head, heads.head_dim);
    let (dout, q, k, v) = (
        dout.contiguous()?,
        q.contiguous()?,
        k.contiguous()?,
        v.contiguous()?,
    );

    // delta = rowsum(dout ⊙ o), one warp per (token, head).
    let mut delta = dev.alloc_zeros::<f32>((t * h).max(1))?;
    {
        let (ob, db) = (Buf::of(&o)?, Buf::of(&dout)?);
        let (ov, dv_) = (ob.view::<bf16>()?, db.view::<bf16>()?);
        let (stream, f) = func(&dev, Module::Attention, "flash_bwd_delta")?;
        let (ti, hi, di) = (t as i32, h as i32, d as i32);
        let mut b = stream.launch_builder(&f);
        b.arg(&ov)
            .arg(&dv_)
            .arg(&mut delta)
            .arg(&ti)
            .arg(&hi)
            .arg(&di);
        let cfg = LaunchConfig {
            grid_dim: ((t * h * 32).div_ceil(256).max(1) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        driver(unsafe { b.launch(cfg) })?;
    }

    let tiles = cu.tiles(KEY_TILE);
    let (cu_d, tiles_d) = (upload(&dev, &cu.cu)?, upload(&dev, &tiles)?);
    let mut dq = dev.alloc_zeros::<f32>(t * h * d)?;
    let mut dk = dev.alloc_zeros::<bf16>(t * kvh * d)?;
    let mut dv = dev.alloc_zeros::<bf16>(t * kvh * d)?;
    let lse_b = Buf::of(&lse)?;
    let (qb, kb, vb, db) = (Buf::of(&q)?, Buf::of(&k)?, Buf::of(&v)?, Buf::of(&dout)?);
    let (qv, kv, vv, dov) = (
        qb.view::<bf16>()?,
        kb.view::<bf16>()?,
        vb.view::<bf16>()?,
        db.view::<bf16>()?,
    );
    let lsev = lse_b.view::<f32>()?;
    if !tiles.is_empty() {
        let (stream, f) = func(&dev, Module::Attention, &format!("flash_bwd_d{d}"))?;
        let (hi, kvi, scale) = (h as i32, kvh as i32, (1.0 / (d as f64).sqrt()) as f32);
        let mut b = stream.launch_builder(&f);
        b.arg(&qv)
            .arg(&kv)
            .arg(&vv)
            .arg(&dov)
            .arg(&lsev)
            .arg(&delta);
        b.arg(&mut dq)
            .arg(&mut dk)
            .arg(&mut dv)
            .arg(&cu_d)
            .arg(&tiles_d);
        b.arg(&hi).arg(&kvi).arg(&scale);
        driver(unsafe { b.launch(grid(tiles.len() / 2, kvh)) })?;
    }
    let dq = tensor(&dev, dq, (t, h * d)).to_dtype(DType::BF16)?;
    Ok(Some((
        dq,
        tensor(&dev, dk, (t, kvh * d)),
        tensor(&dev, dv, (t, kvh * d)),
    )))
}

/// `(o [T, H·D] bf16, lse [T, H] f32)`.
fn run_forward(
    dev: &CudaDevice,
    x: AttentionInputs<'_>,
    cu: &CuSeqlens,
) -> Result<(Tensor, Tensor)> {
    let AttentionInputs { q, k, v, heads, .. } = x;
    let (t, h, kvh, d) = (q.dims()[0], heads.n_head, heads.n_kv_head, heads.head_dim);
    if cu.total() != t || k.dims() != [t, kvh * d] || v.dims() != k.dims() || q.dims() != [t, h * d]
    {
        return Err(shape_err(format!(
            "attention: q {:?}, k {:?}, v {:?}, {} tokens in documents, {heads:?}",
            q.dims(),
            k.dims(),
            v.dims(),
            cu.total()
        )));
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let tiles = cu.tiles(QUERY_TILE);
    let (cu_d, tiles_d) = (upload(dev, &cu.cu)?, upload(dev, &tiles)?);
    let mut o = dev.alloc_zeros::<bf16>(t * h * d)?;
    let mut lse = dev.alloc_zeros::<f32>(t * h)?;
    if !tiles.is_empty() {
        let (qb, kb, vb) = (Buf::of(&q)?, Buf::of(&k)?, Buf::of(&v)?);
        let (qv, kv, vv) = (qb.view::<bf16>()?, kb.view::<bf16>()?, vb.view::<bf16>()?);
        let (stream, f) = func(dev, Module::Attention, &format!("flash_fwd_d{d}"))?;
        let (hi, kvi, scale) = (h as i32, kvh as i32, (1.0 / (d as f64).sqrt()) as f32);
        let mut b = stream.launch_builder(&f);
        b.arg(&qv).arg(&kv).arg(&vv).arg(&mut o).arg(&mut lse);
        b.arg(&cu_d).arg(&tiles_d).arg(&hi).arg(&kvi).arg(&scale);
        driver(unsafe { b.launch(grid(tiles.len() / 2, h)) })?;
    }
    Ok((tensor(dev, o, (t, h * d)), tensor(dev, lse, (t, h))))
}

/// The GPU when every input is bf16 on it and the head layout has a kernel.
fn applies(ts: &[&Tensor], heads: &Heads) -> Option<CudaDevice> {
    let dev = bf16_cuda(ts[0])?;
    let ok = ts.iter().all(|t| bf16_cuda(t).is_some())
        && matches!(heads.head_dim, 64 | 128)
        && heads.n_kv_head > 0
        && heads.n_head % heads.n_kv_head == 0;
    ok.then_some(dev)
}

fn cu_seqlens(segments: &[std::ops::Range<usize>]) -> Result<CuSeqlens> {
    CuSeqlens::from_segments(segments).map_err(|e| shape_err(format!("attention: {e}")))
}

fn grid(tiles: usize, heads: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (tiles as u32, heads as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}
