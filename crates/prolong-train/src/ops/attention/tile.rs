//! Causal tiles of one document: a block of queries against its key prefix,
//! the masked softmax over it and that softmax's backward.

use candle_core::{D, Device, Tensor};

use super::AttentionInputs;
use super::layout::{kv_heads, q_heads};
use crate::error::Result;
use crate::ops::cpu;

/// One document's scaled queries `[KV, L·G, D]` and keys, values `[KV, L, D]`.
pub(super) struct Doc {
    qs: Tensor,
    k: Tensor,
    v: Tensor,
}

impl Doc {
    /// Tokens `s..s + l` of `x`.
    pub(super) fn new(x: AttentionInputs<'_>, s: usize, l: usize) -> Result<Self> {
        let AttentionInputs { q, k, v, heads, .. } = x;
        Ok(Self {
            qs: q_heads(&q.narrow(0, s, l)?, heads)?.affine(heads.scale(), 0.0)?,
            k: kv_heads(&k.narrow(0, s, l)?, heads)?,
            v: kv_heads(&v.narrow(0, s, l)?, heads)?,
        })
    }
    pub(super) fn queries(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.qs.narrow(1, t.row0, t.rows)?)
    }
    pub(super) fn keys(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.k.narrow(1, 0, t.keys)?)
    }
    pub(super) fn values(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.v.narrow(1, 0, t.keys)?)
    }
    /// Softmax of the tile's causally masked scores `qs · kᵀ` → `[KV, B·G, i1]`.
    pub(super) fn probs(&self, t: &Tile) -> Result<Tensor> {
        let s = self.queries(t)?.matmul(&self.keys(t)?.t()?)?; // 2·G·B·i1·D per kv head
        causal_softmax(&s, t)
    }
}

/// A block of queries `[i0, i1)` of a document and its causal key prefix `[0, i1)`.
pub(super) struct Tile {
    /// First query.
    i0: usize,
    /// Heads per kv head.
    g: usize,
    /// First row and rows of the tile in the token-major `[L·G, D]` query stack.
    pub(super) row0: usize,
    pub(super) rows: usize,
    /// Keys the tile attends to: `i1`.
    keys: usize,
}

impl Tile {
    /// Unmasked keys of row `r` of the tile (rows of all kv heads counted on).
    fn visible(&self, r: usize) -> usize {
        self.i0 + (r % self.rows) / self.g + 1
    }
}

pub(super) fn tiles(l: usize, block: usize, g: usize) -> impl Iterator<Item = Tile> {
    let block = block.clamp(1, l.max(1));
    (0..l).step_by(block).map(move |i0| {
        let i1 = (i0 + block).min(l);
        Tile {
            i0,
            g,
            row0: i0 * g,
            rows: (i1 - i0) * g,
            keys: i1,
        }
    })
}

/// `acc + [part; 0]`: `part [KV, i1, D]` added to the first `i1` of `l` rows.
pub(super) fn add_prefix(acc: Option<Tensor>, part: Tensor, l: usize) -> Result<Tensor> {
    let rows = part.dims()[1];
    let part = if rows < l {
        part.pad_with_zeros(1, 0, l - rows)?
    } else {
        part
    };
    Ok(match acc {
        Some(a) => (a + part)?,
        None => part,
    })
}

/// Row-wise softmax of the tile's scores `[KV, B·G, i1]` over each row's visible keys;
/// the masked ones are 0.
fn causal_softmax(s: &Tensor, t: &Tile) -> Result<Tensor> {
    let n = t.keys;
    // Fused CPU path: one pass per row over its visible keys, masked ones stay 0.
    let fused = cpu::with_f32(s, |z| {
        let mut out = vec![0f32; z.len()];
        cpu::par_rows(&mut out, n, |r0, rows| {
            for (k, row) in rows.chunks_mut(n).enumerate() {
                let (r, m) = (r0 + k, t.visible(r0 + k));
                let zr = &z[r * n..r * n + m];
                let sum = cpu::exp_into(zr, cpu::row_max(zr), &mut row[..m]);
                let inv = 1.0 / sum;
                row[..m].iter_mut().for_each(|x| *x *= inv);
            }
        });
        out
    })?;
    if let Some(p) = fused {
        return cpu::tensor(p, s.dims());
    }
    let s = visible_mask(t, s.device())?
        .broadcast_as(s.shape())?
        .where_cond(s, &neg_inf(s)?)?;
    let m = s.max_keepdim(D::Minus1)?;
    let e = s.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `dS = P ⊙ (dP − rowsum(dP ⊙ P))` for the tile's causal probabilities `p`.
pub(super) fn softmax_backward(p: &Tensor, dp: &Tensor, t: &Tile) -> Result<Tensor> {
    let n = t.keys;
    let fused = cpu::with_f32(p, |ps| {
        cpu::with_f32(dp, |dps| {
            let mut out = vec![0f32; ps.len()];
            cpu::par_rows(&mut out, n, |r0, rows| {
                for (k, row) in rows.chunks_mut(n).enumerate() {
                    let (r, m) = (r0 + k, t.visible(r0 + k));
                    let pr = &ps[r * n..r * n + m];
                    let dr = &dps[r * n..r * n + m];
                    let d = cpu::dot(pr, dr);
                    for ((o, &p), &dp) in row[..m].iter_mut().zip(pr).zip(dr) {
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

/// `[B·G, i1]` u8, 1 where the key is visible to the row's query.
fn visible_mask(t: &Tile, device: &Device) -> Result<Tensor> {
    let mask: Vec<u8> = (0..t.rows)
        .flat_map(|r| {
            let m = t.visible(r);
            (0..t.keys).map(move |j| u8::from(j < m))
        })
        .collect();
    Ok(Tensor::from_vec(mask, (t.rows, t.keys), device)?)
}

fn neg_inf(like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::new(f32::NEG_INFINITY, like.device())?
        .to_dtype(like.dtype())?
        .broadcast_as(like.shape())?)
}
