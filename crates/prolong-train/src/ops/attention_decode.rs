//! Causal attention of a chunk of new tokens over a KV cache (inference only, no backward).
//!
//! The chunk's `L` queries sit at positions `P..P+L` of one document; the keys and values
//! cover positions `0..P+L` (the cached prefix, then the chunk itself), so query `i`
//! attends keys `0..=P+i`. The prefix length `P` is implied by the shapes.
//!
//! Keys and values come head-major, `[KV, T, D]`, the layout of the KV cache: each kv
//! head's `[T, D]` block is then contiguous and feeds the matmuls without a copy, so a
//! decoding step reads the cache once instead of re-laying it out.
//!
//! With no prefix (`P = 0`) this is exactly the training attention of one document, and
//! [`forward`] runs [`attention::forward`]. Otherwise the scores are built one kv head at a
//! time, `[G·L, P+L]` (its `G` query heads stacked), so a chunk of a long prompt holds
//! `G·L·(P+L)` scores at once, never the `(P+L)²` of the whole sequence.

use candle_core::{D, Tensor};

use crate::config::Heads;
use crate::error::{Error, Result};
use crate::ops::attention::{self, AttentionInputs};
use crate::ops::cpu;

/// `q [L, H·D]` (the chunk), `k, v [KV, P+L, D]` (prefix and chunk) → `[L, H·D]`.
pub fn forward(q: &Tensor, k: &Tensor, v: &Tensor, heads: &Heads) -> Result<Tensor> {
    let (l, t) = check(q, k, v, heads)?;
    let prefix = t - l;
    if prefix == 0 {
        let (k, v) = (rows(k, heads)?, rows(v, heads)?);
        let doc = 0..l;
        return attention::forward(AttentionInputs::new(
            q,
            &k,
            &v,
            heads,
            std::slice::from_ref(&doc),
        ));
    }
    let (kv, d) = (heads.n_kv_head, heads.head_dim);
    let g = heads.n_head / kv;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = Vec::with_capacity(kv);
    for j in 0..kv {
        // [L, G·D] → [G·L, D]: the query heads of kv head j, stacked
        let qj = q
            .narrow(1, j * g * d, g * d)?
            .reshape((l, g, d))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((g * l, d))?
            .affine(scale, 0.0)?;
        let (kj, vj) = (k.get(j)?, v.get(j)?); // [T, D]
        let s = qj.matmul(&kj.t()?)?; // [G·L, T]: 2·G·L·T·D FLOPs
        let p = probs(&s, prefix, l)?;
        let oj = p.matmul(&vj)?; // [G·L, D]
        out.push(oj.reshape((g, l, d))?.transpose(0, 1)?.contiguous()?); // [L, G, D]
    }
    Ok(Tensor::cat(&out, 1)?.reshape((l, heads.n_head * d))?)
}

/// Softmax of the scores `s [G·L, T]`, row `r` (query `i = r mod L`) over keys `0..=P+i`;
/// masked keys get probability 0.
fn probs(s: &Tensor, prefix: usize, l: usize) -> Result<Tensor> {
    let (rows, t) = s.dims2()?;
    let fused = cpu::with_f32(s, |z| {
        let mut out = vec![0f32; z.len()];
        cpu::par_rows(&mut out, t, |r0, chunk| {
            for (k, row) in chunk.chunks_mut(t).enumerate() {
                let r = r0 + k;
                let n = prefix + r % l + 1;
                let zr = &z[r * t..r * t + n];
                let inv = 1.0 / cpu::exp_into(zr, cpu::row_max(zr), &mut row[..n]);
                row[..n].iter_mut().for_each(|x| *x *= inv);
            }
        });
        out
    })?;
    if let Some(p) = fused {
        return cpu::tensor(p, &[rows, t]);
    }
    // Generic path: key j is visible to row r when j < P + (r mod L) + 1.
    let device = s.device();
    let keys = Tensor::arange(0u32, t as u32, device)?.reshape((1, t))?;
    let limits: Vec<u32> = (0..rows).map(|r| (prefix + r % l + 1) as u32).collect();
    let limits = Tensor::from_vec(limits, (rows, 1), device)?;
    let visible = keys.broadcast_lt(&limits)?;
    let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?
        .to_dtype(s.dtype())?
        .broadcast_as(s.shape())?;
    let s = visible.where_cond(s, &neg_inf)?;
    let e = s.broadcast_sub(&s.max_keepdim(D::Minus1)?)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `[KV, T, D]` → `[T, KV·D]` (token rows, heads side by side).
pub fn rows(x: &Tensor, heads: &Heads) -> Result<Tensor> {
    let t = x.dims()[1];
    Ok(x.transpose(0, 1)?
        .contiguous()?
        .reshape((t, heads.n_kv_head * heads.head_dim))?)
}

/// `[T, KV·D]` → `[KV, T, D]`.
pub fn heads_major(x: &Tensor, heads: &Heads) -> Result<Tensor> {
    let t = x.dims()[0];
    Ok(x.reshape((t, heads.n_kv_head, heads.head_dim))?
        .transpose(0, 1)?
        .contiguous()?)
}

/// Returns `(L, T)` after checking the head layout and the widths.
fn check(q: &Tensor, k: &Tensor, v: &Tensor, heads: &Heads) -> Result<(usize, usize)> {
    let l = attention::check_heads("attention_decode", [q, k, v], heads, |_| {
        let (kv, t, d) = k.dims3()?;
        Ok((kv, d) == (heads.n_kv_head, heads.head_dim) && v.dims3()? == (kv, t, d))
    })?;
    let t = k.dims3()?.1;
    if l == 0 || l > t {
        return Err(Error::Shape {
            op: "attention_decode",
            msg: format!("{l} queries for {t} keys (need 1 ≤ queries ≤ keys)"),
        });
    }
    Ok((l, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_values::{max_abs_diff, values};
    use candle_core::DType;

    /// A chunk over a prefix gives the rows of full causal attention over prefix + chunk,
    /// on the fused f32 path and the generic f64 path.
    #[test]
    fn chunk_over_prefix_matches_full_attention() {
        let heads = Heads {
            n_head: 6,
            n_kv_head: 2,
            head_dim: 4,
        };
        let (t, l) = (23, 5);
        let mk = |w: usize, seed: usize| values(&[t, w], seed);
        let (q, k, v) = (mk(24, 1), mk(8, 2), mk(8, 3));
        for dtype in [DType::F64, DType::F32] {
            let (q, k, v) = (
                q.to_dtype(dtype).unwrap(),
                k.to_dtype(dtype).unwrap(),
                v.to_dtype(dtype).unwrap(),
            );
            let doc = 0..t;
            let full = attention::forward(AttentionInputs::new(
                &q,
                &k,
                &v,
                &heads,
                std::slice::from_ref(&doc),
            ))
            .unwrap();
            let (kh, vh) = (
                heads_major(&k, &heads).unwrap(),
                heads_major(&v, &heads).unwrap(),
            );
            assert_eq!(
                rows(&kh, &heads).unwrap().to_vec2::<f64>().ok(),
                k.to_vec2().ok()
            );
            // a chunk over a prefix, and the whole sequence as one chunk (no prefix)
            for (p, l) in [(t - l, l), (0, t)] {
                let kp = kh.narrow(1, 0, p + l).unwrap();
                let vp = vh.narrow(1, 0, p + l).unwrap();
                let chunk = forward(&q.narrow(0, p, l).unwrap(), &kp, &vp, &heads).unwrap();
                let err = max_abs_diff(&chunk, &full.narrow(0, p, l).unwrap());
                assert!(err < 1e-5, "{dtype:?}, prefix {p}: max abs error {err:e}");
            }
        }
    }
}
