//! The documents of a packed sequence: their check against the inputs (and the head
//! layout's, which decoding shares), and runs of one-token documents taken together.

use std::ops::Range;

use candle_core::Tensor;

use super::{AttentionInputs, Heads};
use crate::error::{Error, Result};

/// A run of consecutive one-token documents, or one longer document.
pub(super) struct Piece {
    pub(super) range: Range<usize>,
    pub(super) singletons: bool,
}

pub(super) fn pieces(segments: &[Range<usize>]) -> Vec<Piece> {
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

pub(super) fn check(x: AttentionInputs<'_>) -> Result<()> {
    let AttentionInputs {
        q,
        k,
        v,
        heads,
        segments,
    } = x;
    let kvw = heads.n_kv_head * heads.head_dim;
    let t = check_heads("attention", [q, k, v], heads, |t| {
        Ok(k.dims2()? == (t, kvw) && v.dims2()? == (t, kvw))
    })?;
    let err = |msg: String| {
        Err(Error::Shape {
            op: "attention",
            msg,
        })
    };
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

/// The check every attention (training and decoding) starts with: a head layout that
/// can be attended over, `q` of `H·D` columns, and `kv_fits(q's rows)`, whether `k` and
/// `v` fit `heads` in the caller's layout. Returns q's rows; errors are `op`'s.
pub(crate) fn check_heads(
    op: &'static str,
    [q, k, v]: [&Tensor; 3],
    heads: &Heads,
    kv_fits: impl FnOnce(usize) -> Result<bool>,
) -> Result<usize> {
    let err = |msg: String| Err(Error::Shape { op, msg });
    if !heads.is_valid() {
        return err(format!("bad head layout {heads:?}"));
    }
    let (rows, qw) = q.dims2()?;
    if qw != heads.n_head * heads.head_dim || !kv_fits(rows)? {
        return err(format!(
            "q {:?}, k {:?}, v {:?} do not match {heads:?}",
            q.dims(),
            k.dims(),
            v.dims()
        ));
    }
    Ok(rows)
}
