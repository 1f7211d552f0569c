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

mod layout;
mod segments;
mod tile;

use candle_core::Tensor;

/// Re-exported where callers of the ops have always found them.
pub use crate::config::{AttentionInputs, Heads};
use crate::error::{Error, Result};
use crate::ops::precision;
use layout::{cat, kv_rows, q_heads, q_rows};
pub(crate) use segments::check_heads;
use segments::{check, pieces};
use tile::{Doc, add_prefix, softmax_backward, tiles};

/// Queries per causal tile (per query head).
pub const QUERY_BLOCK: usize = 256;

impl AttentionInputs<'_> {
    /// `f` on these inputs with q, k and v widened: scores, softmax and the value sums
    /// in f32 for bf16 inputs (see `precision`).
    fn widened<R>(self, f: impl FnOnce(AttentionInputs<'_>) -> Result<R>) -> Result<R> {
        let w = precision::widen;
        let (q, k, v) = (w(self.q)?, w(self.k)?, w(self.v)?);
        f(AttentionInputs {
            q: &q,
            k: &k,
            v: &v,
            ..self
        })
    }
}

/// Attention over `x`'s documents: `[T, H·D]`.
pub fn forward(x: AttentionInputs<'_>) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if let Some(out) = crate::ops::cuda::attention::forward(x)? {
        return Ok(out);
    }
    let out = x.widened(|x| forward_tiled(x, QUERY_BLOCK))?;
    precision::narrow(out, x.q.dtype())
}

/// Returns `(dq, dk, dv)` for `dout [T, H·D]`, with the inputs given to `forward`.
pub fn backward(dout: &Tensor, x: AttentionInputs<'_>) -> Result<(Tensor, Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if let Some(grads) = crate::ops::cuda::attention::backward(dout, x)? {
        return Ok(grads);
    }
    let wide_dout = precision::widen(dout)?;
    let (dq, dk, dv) = x.widened(|x| backward_tiled(&wide_dout, x, QUERY_BLOCK))?;
    let n = |t| precision::narrow(t, dout.dtype());
    Ok((n(dq)?, n(dk)?, n(dv)?))
}

/// [`forward`] with `block` queries per tile (`usize::MAX`: one tile per document, the
/// untiled computation).
pub fn forward_tiled(x: AttentionInputs<'_>, block: usize) -> Result<Tensor> {
    check(x)?;
    let AttentionInputs {
        v, heads, segments, ..
    } = x;
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
            let doc = Doc::new(x, s, l)?;
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
    x: AttentionInputs<'_>,
    block: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    check(x)?;
    let AttentionInputs {
        q,
        k,
        heads,
        segments,
        ..
    } = x;
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
        let doc = Doc::new(x, s, l)?;
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

#[cfg(test)]
mod tests {
    //! Tiled against untiled attention, and the fused CPU path against the
    //! generic one.

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
            let x = AttentionInputs::new(&q, &k, &v, &heads, &segments);
            let full = forward_tiled(x, usize::MAX).unwrap();
            let tiled = forward_tiled(x, 7).unwrap();
            assert!(max_abs_diff(&tiled, &full) < tol, "{dtype:?} forward");
            let gf = backward_tiled(&dout, x, usize::MAX).unwrap();
            let gt = backward_tiled(&dout, x, 7).unwrap();
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
        let x64 = AttentionInputs::new(&q, &k, &v, &heads, &segments);
        let (q32, k32, v32) = (f32s(&q), f32s(&k), f32s(&v));
        let x32 = AttentionInputs::new(&q32, &k32, &v32, &heads, &segments);
        let out64 = forward(x64).unwrap();
        let out32 = forward(x32).unwrap();
        let g64 = backward(&dout, x64).unwrap();
        let g32 = backward(&f32s(&dout), x32).unwrap();
        assert!(max_abs_diff(&out32, &out64) < 1e-5);
        assert!(max_abs_diff(&g32.0, &g64.0) < 1e-5);
        assert!(max_abs_diff(&g32.1, &g64.1) < 1e-5);
        assert!(max_abs_diff(&g32.2, &g64.2) < 1e-5);
    }
}
