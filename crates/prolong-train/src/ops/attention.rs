//! Document-masked causal attention with grouped-query heads.
//!
//! The packed sequence is cut into documents (`segments`, tiling `[0, T)`); each document
//! attends causally within itself only. Attention runs one document at a time, and
//! within a document one block of [`QUERY_BLOCK`] queries at a time against the keys up
//! to the block's last query (causal tiling): the scores above the diagonal blocks are
//! never computed (about half the FLOPs of a full `L × L` score matrix), and memory holds
//! one block's `B × L` probabilities, never a whole document's `L × L`.
//!
//! Each query block sees its whole causal key prefix at once, so its softmax is exact
//! in one pass and needs no online rescaling across key blocks (FlashAttention's running
//! max/sum). That keeps every product a large batched matmul, which on a CPU is what
//! runs fast; the price is memory `B × L` instead of `B × B`, bounded by the block size
//! for a given document length.
//!
//! Inputs are the q/k/v projections after RoPE, token rows with heads side by side:
//! `q [T, H·D]`, `k, v [T, KV·D]`. Query head `h` reads kv head `h / G`, `G = H / KV`
//! (HF `repeat_kv`). Inside a document the `G` query heads of one kv head are stacked into
//! one `[L·G, D]` matrix, token-major (row `i·G + g`), so each kv head costs one batched
//! matmul, a block of queries is a contiguous run of rows, and K/V are never repeated in
//! memory.
//!
//! The backward pass recomputes each block's probabilities from q and k (nothing but the
//! inputs is saved) and applies the softmax backward `dS = P ⊙ (dP − rowsum(dP ⊙ P))`;
//! the key and value gradients of a block's prefix are summed over the blocks in order.

use std::ops::Range;

use candle_core::{D, Device, Tensor};

/// Re-exported where callers of the ops have always found it.
pub use crate::config::Heads;
use crate::error::{Error, Result};
use crate::ops::{cpu, precision};

/// Queries per causal tile (per query head).
pub const QUERY_BLOCK: usize = 256;

/// `q [T, H·D]`, `k, v [T, KV·D]` → `[T, H·D]`.
pub fn forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::attention::forward(q, k, v, heads, segments)? {
        return Ok(out);
    }
    // Scores, softmax and the value sums in f32 for bf16 inputs (see `precision`).
    let w = precision::widen;
    let out = forward_tiled(&w(q)?, &w(k)?, &w(v)?, heads, segments, QUERY_BLOCK)?;
    precision::narrow(out, q.dtype())
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
    #[cfg(feature = "cuda")]
    if let Some(grads) = crate::ops::cuda::attention::backward(dout, q, k, v, heads, segments)? {
        return Ok(grads);
    }
    let w = precision::widen;
    let (dq, dk, dv) = backward_tiled(
        &w(dout)?,
        &w(q)?,
        &w(k)?,
        &w(v)?,
        heads,
        segments,
        QUERY_BLOCK,
    )?;
    let n = |t| precision::narrow(t, dout.dtype());
    Ok((n(dq)?, n(dk)?, n(dv)?))
}

/// [`forward`] with `block` queries per tile (`usize::MAX`: one tile per document, the
/// untiled computation).
pub fn forward_tiled(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
    block: usize,
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
            let doc = Doc::new(q, k, v, heads, s, l)?;
            let mut parts = Vec::new();
            for tile in tiles(l, block, heads.group()) {
                let p = doc.probs(&tile)?;
                parts.push(p.matmul(&doc.values(&tile)?)?); // 2·G·B·i1·D per kv head
            }
            q_rows(&cat(parts, 1)?, heads, l)?
        };
        out.push(o);
    }
    cat(out, 0)
}

/// [`backward`] with `block` queries per tile (see [`forward_tiled`]).
pub fn backward_tiled(
    dout: &Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: &Heads,
    segments: &[Range<usize>],
    block: usize,
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
        let doc = Doc::new(q, k, v, heads, s, l)?;
        let dod = q_heads(&dod, heads)?;
        let mut dq_parts = Vec::new();
        let (mut dk, mut dv): (Option<Tensor>, Option<Tensor>) = (None, None);
        for tile in tiles(l, block, heads.group()) {
            let qb = doc.queries(&tile)?;
            let (kb, vb) = (doc.keys(&tile)?, doc.values(&tile)?);
            let dob = dod.narrow(1, tile.row0, tile.rows)?;
            let p = doc.probs(&tile)?; // recomputed
            let dp = dob.matmul(&vb.t()?)?; // [KV, B·G, i1]
            let dv_b = p.t()?.matmul(&dob)?; // [KV, i1, D], sums the group
            let ds = softmax_backward(&p, &dp, &tile)?;
            drop((p, dp));
            dq_parts.push(ds.matmul(&kb)?.affine(heads.scale(), 0.0)?);
            let dk_b = ds.t()?.matmul(&qb)?; // qs carries the scale
            dk = Some(add_prefix(dk, dk_b, l)?);
            dv = Some(add_prefix(dv, dv_b, l)?);
        }
        let none = || Error::Shape {
            op: "attention",
            msg: "a document without tiles".into(),
        };
        dqs.push(q_rows(&cat(dq_parts, 1)?, heads, l)?);
        dks.push(kv_rows(&dk.ok_or_else(none)?, heads, l)?);
        dvs.push(kv_rows(&dv.ok_or_else(none)?, heads, l)?);
    }
    Ok((cat(dqs, 0)?, cat(dks, 0)?, cat(dvs, 0)?))
}

/// One document's scaled queries `[KV, L·G, D]` and keys, values `[KV, L, D]`.
struct Doc {
    qs: Tensor,
    k: Tensor,
    v: Tensor,
}

impl Doc {
    fn new(q: &Tensor, k: &Tensor, v: &Tensor, heads: &Heads, s: usize, l: usize) -> Result<Self> {
        Ok(Self {
            qs: q_heads(&q.narrow(0, s, l)?, heads)?.affine(heads.scale(), 0.0)?,
            k: kv_heads(&k.narrow(0, s, l)?, heads)?,
            v: kv_heads(&v.narrow(0, s, l)?, heads)?,
        })
    }
    fn queries(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.qs.narrow(1, t.row0, t.rows)?)
    }
    fn keys(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.k.narrow(1, 0, t.keys)?)
    }
    fn values(&self, t: &Tile) -> Result<Tensor> {
        Ok(self.v.narrow(1, 0, t.keys)?)
    }
    /// Softmax of the tile's causally masked scores `qs · kᵀ` → `[KV, B·G, i1]`.
    fn probs(&self, t: &Tile) -> Result<Tensor> {
        let s = self.queries(t)?.matmul(&self.keys(t)?.t()?)?; // 2·G·B·i1·D per kv head
        causal_softmax(&s, t)
    }
}

/// A block of queries `[i0, i1)` of a document and its causal key prefix `[0, i1)`.
struct Tile {
    /// First query.
    i0: usize,
    /// Heads per kv head.
    g: usize,
    /// First row and rows of the tile in the token-major `[L·G, D]` query stack.
    row0: usize,
    rows: usize,
    /// Keys the tile attends to: `i1`.
    keys: usize,
}

impl Tile {
    /// Unmasked keys of row `r` of the tile (rows of all kv heads counted on).
    fn visible(&self, r: usize) -> usize {
        self.i0 + (r % self.rows) / self.g + 1
    }
}

fn tiles(l: usize, block: usize, g: usize) -> impl Iterator<Item = Tile> {
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
fn add_prefix(acc: Option<Tensor>, part: Tensor, l: usize) -> Result<Tensor> {
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
fn softmax_backward(p: &Tensor, dp: &Tensor, t: &Tile) -> Result<Tensor> {
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

/// `[L, H·D]` → `[KV, L·G, D]` (query heads of one kv head stacked, token-major).
fn q_heads(x: &Tensor, h: &Heads) -> Result<Tensor> {
    let l = x.dims()[0];
    Ok(x.reshape((l, h.n_kv_head, h.group(), h.head_dim))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((h.n_kv_head, l * h.group(), h.head_dim))?)
}

/// `[KV, L·G, D]` → `[L, H·D]`.
fn q_rows(x: &Tensor, h: &Heads, l: usize) -> Result<Tensor> {
    Ok(x.reshape((h.n_kv_head, l, h.group(), h.head_dim))?
        .transpose(0, 1)?
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

fn cat(mut parts: Vec<Tensor>, dim: usize) -> Result<Tensor> {
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    Ok(Tensor::cat(&parts, dim)?)
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
    use crate::ops::test_values::{max_abs_diff, values};
    use candle_core::DType;

    /// Causal tiles of 7 queries (documents of 1, 5, 7, 23 and 40 tokens: shorter than a
    /// tile, exactly one, and ragged last tiles) against one tile per document, forward
    /// and backward, in f64 (generic path) and f32 (fused CPU path).
    #[test]
    fn tiled_equals_untiled() {
        let heads = Heads {
            n_head: 6,
            n_kv_head: 2,
            head_dim: 8,
        };
        let segments = [0..1, 1..6, 6..13, 13..36, 36..76];
        let t = 76;
        let (q, k, v, dout) = (
            values(&[t, 48], 1),
            values(&[t, 16], 2),
            values(&[t, 16], 3),
            values(&[t, 48], 4),
        );
        for dtype in [DType::F64, DType::F32] {
            let c = |x: &Tensor| x.to_dtype(dtype).unwrap();
            let (q, k, v, dout) = (c(&q), c(&k), c(&v), c(&dout));
            let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
            let full = forward_tiled(&q, &k, &v, &heads, &segments, usize::MAX).unwrap();
            let tiled = forward_tiled(&q, &k, &v, &heads, &segments, 7).unwrap();
            assert!(max_abs_diff(&tiled, &full) < tol, "{dtype:?} forward");
            let gf = backward_tiled(&dout, &q, &k, &v, &heads, &segments, usize::MAX).unwrap();
            let gt = backward_tiled(&dout, &q, &k, &v, &heads, &segments, 7).unwrap();
            for (name, a, b) in [
                ("dq", &gt.0, &gf.0),
                ("dk", &gt.1, &gf.1),
                ("dv", &gt.2, &gf.2),
            ] {
                assert!(
                    max_abs_diff(a, b) < tol,
                    "{dtype:?} {name}: {}",
                    max_abs_diff(a, b)
                );
            }
            // and the outputs are not trivially zero
            assert!(max_abs_diff(&full, &full.zeros_like().unwrap()) > 0.1);
        }
    }

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
        let mk = |w: usize, seed: usize| values(&[t, w], seed);
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
        assert!(max_abs_diff(&out32, &out64) < 1e-5);
        assert!(max_abs_diff(&g32.0, &g64.0) < 1e-5);
        assert!(max_abs_diff(&g32.1, &g64.1) < 1e-5);
        assert!(max_abs_diff(&g32.2, &g64.2) < 1e-5);
    }
}
