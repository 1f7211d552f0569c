//! Document-masked causal attention with grouped-query heads.
//!
//! The packed sequence is cut into documents (`segments`, tiling `[0, T)`); each document
//! attends causally within itself only. Attention runs one document at a time, so memory
//! grows with the square of each document's length, never the whole sequence's.
//!
//! Inputs are the q/k/v projections after RoPE, token rows with heads side by side:
//! `q [T, H·D]`, `k, v [T, KV·D]`. Query head `h` reads kv head `h / G`, `G = H / KV`
//! (HF `repeat_kv`). Inside a document the `G` query heads of one kv head are stacked into
//! one `[G·L, D]` matrix, so each kv head costs one batched matmul and K/V are never
//! repeated in memory.
//!
//! The backward pass recomputes the probabilities from q and k (nothing but the inputs is
//! saved) and applies the softmax backward `dS = P ⊙ (dP − rowsum(dP ⊙ P))`.

use std::ops::Range;

use candle_core::{D, Device, Tensor};

use crate::error::{Error, Result};
use crate::ops::cpu;

/// Head layout of the attention inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
}

impl Heads {
    fn group(&self) -> usize {
        self.n_head / self.n_kv_head
    }
    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
}

/// `q [T, H·D]`, `k, v [T, KV·D]` → `[T, H·D]`.
pub fn forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
) -> Result<Tensor> {
    check(q, k, v, heads, segments)?;
    let mut out = Vec::new();
    for piece in pieces(segments) {
        let (s, l) = (piece.range.start, piece.range.len());
        let o = if piece.singletons {
            // A one-token document attends to itself only: its output is its value row,
            // once per query head of the group.
            let (kv, g, d) = (heads.n_kv_head, heads.group(), heads.head_dim);
            v.narrow(0, s, l)?
                .reshape((l, kv, 1, d))?
                .broadcast_as((l, kv, g, d))?
                .contiguous()?
                .reshape((l, heads.n_head * d))?
        } else {
            let qs = q_heads(&q.narrow(0, s, l)?, heads)?.affine(heads.scale(), 0.0)?;
            let kd = kv_heads(&k.narrow(0, s, l)?, heads)?;
            let vd = kv_heads(&v.narrow(0, s, l)?, heads)?;
            let p = probs(&qs, &kd, heads, l)?;
            q_rows(&p.matmul(&vd)?, heads, l)? // 2·H·L²·D FLOPs
        };
        out.push(o);
    }
    cat_rows(out)
}

/// Returns `(dq, dk, dv)` for `dout [T, H·D]`, with the inputs given to `forward`.
pub fn backward(
    dout: &Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
) -> Result<(Tensor, Tensor, Tensor)> {
    check(q, k, v, heads, segments)?;
    let (mut dqs, mut dks, mut dvs) = (Vec::new(), Vec::new(), Vec::new());
    for piece in pieces(segments) {
        let (s, l) = (piece.range.start, piece.range.len());
        let dod = dout.narrow(0, s, l)?;
        if piece.singletons {
            let (kv, g, d) = (heads.n_kv_head, heads.group(), heads.head_dim);
            dvs.push(dod.reshape((l, kv, g, d))?.sum(2)?.reshape((l, kv * d))?);
            dqs.push(Tensor::zeros((l, heads.n_head * d), q.dtype(), q.device())?);
            dks.push(Tensor::zeros((l, kv * d), k.dtype(), k.device())?);
            continue;
        }
        let qs = q_heads(&q.narrow(0, s, l)?, heads)?.affine(heads.scale(), 0.0)?;
        let kd = kv_heads(&k.narrow(0, s, l)?, heads)?;
        let vd = kv_heads(&v.narrow(0, s, l)?, heads)?;
        let p = probs(&qs, &kd, heads, l)?; // recomputed: 2·H·L²·D FLOPs
        let dod = q_heads(&dod, heads)?;
        let dv = p.t()?.matmul(&dod)?; // [KV, L, D], sums the group: 2·H·L²·D FLOPs
        let dp = dod.matmul(&vd.t()?)?; // [KV, G·L, L]: 2·H·L²·D FLOPs
        let ds = softmax_backward(&p, &dp, l)?;
        let dq = ds.matmul(&kd)?.affine(heads.scale(), 0.0)?; // 2·H·L²·D FLOPs
        let dk = ds.t()?.matmul(&qs)?; // 2·H·L²·D FLOPs (qs carries the scale)
        dqs.push(q_rows(&dq, heads, l)?);
        dks.push(kv_rows(&dk, heads, l)?);
        dvs.push(kv_rows(&dv, heads, l)?);
    }
    Ok((cat_rows(dqs)?, cat_rows(dks)?, cat_rows(dvs)?))
}

/// Softmax of the causally masked scores `qs · kᵀ` → `[KV, G·L, L]`.
fn probs(qs: &Tensor, kd: &Tensor, heads: &Heads, l: usize) -> Result<Tensor> {
    let (kv, g) = (heads.n_kv_head, heads.group());
    let s = qs.matmul(&kd.t()?)?; // [KV, G·L, L]: 2·H·L²·D FLOPs
    // Fused CPU path: one pass per row over its unmasked keys `0..=i`, masked ones stay 0.
    let fused = cpu::with_f32(&s, |z| {
        let mut out = vec![0f32; z.len()];
        cpu::par_rows(&mut out, l, |r0, rows| {
            for (k, row) in rows.chunks_mut(l).enumerate() {
                let (r, i) = (r0 + k, (r0 + k) % l);
                let zr = &z[r * l..r * l + i + 1];
                let sum = cpu::exp_into(zr, cpu::row_max(zr), &mut row[..=i]);
                let inv = 1.0 / sum;
                row[..=i].iter_mut().for_each(|x| *x *= inv);
            }
        });
        out
    })?;
    if let Some(p) = fused {
        return cpu::tensor(p, &[kv, g * l, l]);
    }
    let s = s.reshape((kv, g, l, l))?;
    let s = causal(l, s.device())?
        .broadcast_as(s.shape())?
        .where_cond(&s, &neg_inf(&s)?)?;
    let m = s.max_keepdim(D::Minus1)?;
    let e = s.broadcast_sub(&m)?.exp()?;
    let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
    Ok(p.reshape((kv, g * l, l))?)
}

/// `dS = P ⊙ (dP − rowsum(dP ⊙ P))` for causal probabilities `p` (rows of `l` keys).
fn softmax_backward(p: &Tensor, dp: &Tensor, l: usize) -> Result<Tensor> {
    let fused = cpu::with_f32(p, |ps| {
        cpu::with_f32(dp, |dps| {
            let mut out = vec![0f32; ps.len()];
            cpu::par_rows(&mut out, l, |r0, rows| {
                for (k, row) in rows.chunks_mut(l).enumerate() {
                    let (r, i) = (r0 + k, (r0 + k) % l);
                    let pr = &ps[r * l..r * l + i + 1];
                    let dr = &dps[r * l..r * l + i + 1];
                    let d = cpu::dot(pr, dr);
                    for ((o, &p), &dp) in row[..=i].iter_mut().zip(pr).zip(dr) {
                        *o = p * (dp - d);
                    }
                }
            });
            out
        })
    })?;
    if let Some(Some(ds)) = fused.transpose()? {
        return cpu::tensor(ds, p.dims());
    }
    Ok((p * dp.broadcast_sub(&(dp * p)?.sum_keepdim(D::Minus1)?)?)?)
}

/// `[L, L]` u8, 1 where key `j ≤` query `i`.
fn causal(l: usize, device: &Device) -> Result<Tensor> {
    let r = Tensor::arange(0u32, l as u32, device)?;
    Ok(r.reshape((1, l))?.broadcast_le(&r.reshape((l, 1))?)?)
}

fn neg_inf(like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::new(f32::NEG_INFINITY, like.device())?
        .to_dtype(like.dtype())?
        .broadcast_as(like.shape())?)
}

/// `[L, H·D]` → `[KV, G·L, D]` (query heads of one kv head stacked).
fn q_heads(x: &Tensor, h: &Heads) -> Result<Tensor> {
    let l = x.dims()[0];
    Ok(x.reshape((l, h.n_kv_head, h.group(), h.head_dim))?
        .permute((1, 2, 0, 3))?
        .contiguous()?
        .reshape((h.n_kv_head, h.group() * l, h.head_dim))?)
}

/// `[KV, G·L, D]` → `[L, H·D]`.
fn q_rows(x: &Tensor, h: &Heads, l: usize) -> Result<Tensor> {
    Ok(x.reshape((h.n_kv_head, h.group(), l, h.head_dim))?
        .permute((2, 0, 1, 3))?
        .contiguous()?
        .reshape((l, h.n_head * h.head_dim))?)
}

/// `[L, KV·D]` → `[KV, L, D]`.
fn kv_heads(x: &Tensor, h: &Heads) -> Result<Tensor> {
    let l = x.dims()[0];
    Ok(x.reshape((l, h.n_kv_head, h.head_dim))?
        .transpose(0, 1)?
        .contiguous()?)
}

/// `[KV, L, D]` → `[L, KV·D]`.
fn kv_rows(x: &Tensor, h: &Heads, l: usize) -> Result<Tensor> {
    Ok(x.transpose(0, 1)?
        .contiguous()?
        .reshape((l, h.n_kv_head * h.head_dim))?)
}

fn cat_rows(mut parts: Vec<Tensor>) -> Result<Tensor> {
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// A run of consecutive one-token documents, or one longer document.
struct Piece {
    range: Range<usize>,
    singletons: bool,
}

fn pieces(segments: &[Range<usize>]) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for seg in segments {
        let single = seg.len() == 1;
        match out.last_mut() {
            Some(p) if single && p.singletons => p.range.end = seg.end,
            _ => out.push(Piece {
                range: seg.clone(),
                singletons: single,
            }),
        }
    }
    out
}

fn check(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
) -> Result<()> {
    let err = |msg: String| {
        Err(Error::Shape {
            op: "attention",
            msg,
        })
    };
    if heads.n_kv_head == 0 || heads.n_head % heads.n_kv_head != 0 || heads.head_dim == 0 {
        return err(format!("bad head layout {heads:?}"));
    }
    let (t, qw) = q.dims2()?;
    let kvw = heads.n_kv_head * heads.head_dim;
    if qw != heads.n_head * heads.head_dim || k.dims2()? != (t, kvw) || v.dims2()? != (t, kvw) {
        return err(format!(
            "q {:?}, k {:?}, v {:?} do not match {heads:?}",
            q.dims(),
            k.dims(),
            v.dims()
        ));
    }
    let mut next = 0;
    for s in segments {
        if s.start != next || s.end <= s.start {
            return err(format!(
                "segments must tile [0, {t}) in order; got {s:?} at {next}"
            ));
        }
        next = s.end;
    }
    if next != t {
        return err(format!(
            "segments cover [0, {next}), sequence has {t} tokens"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// The fused CPU f32 path against the generic candle-ops path (taken by f64).
    #[test]
    fn fused_f32_matches_generic_f64() {
        let heads = Heads {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
        };
        let t = 40;
        let segments = [0..17, 17..18, 18..19, 19..40];
        let mk = |w: usize, seed: usize| {
            let v: Vec<f64> = (0..t * w)
                .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f64 / 1013.0 - 0.5) * 3.0)
                .collect();
            Tensor::from_vec(v, (t, w), &Device::Cpu).unwrap()
        };
        let (q, k, v, dout) = (mk(32, 1), mk(16, 2), mk(16, 3), mk(32, 4));
        let f32s = |x: &Tensor| x.to_dtype(DType::F32).unwrap();
        let out64 = forward(&q, &k, &v, &heads, &segments).unwrap();
        let out32 = forward(&f32s(&q), &f32s(&k), &f32s(&v), &heads, &segments).unwrap();
        let g64 = backward(&dout, &q, &k, &v, &heads, &segments).unwrap();
        let g32 = backward(
            &f32s(&dout),
            &f32s(&q),
            &f32s(&k),
            &f32s(&v),
            &heads,
            &segments,
        )
        .unwrap();
        let err = |a: &Tensor, b: &Tensor| {
            (a.to_dtype(DType::F64).unwrap() - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        assert!(err(&out32, &out64) < 1e-5);
        assert!(err(&g32.0, &g64.0) < 1e-5);
        assert!(err(&g32.1, &g64.1) < 1e-5);
        assert!(err(&g32.2, &g64.2) < 1e-5);
    }
}
