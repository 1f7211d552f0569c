//! Output projection + cross-entropy, in blocks of labeled tokens, so the `[T, V]` logits
//! never exist at once (only `[block, V]`). Only labeled positions are projected.

use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::ops::precision::{self, accum_dtype};
use crate::ops::{cross_entropy, linear};
use prolong_packed::PackedSequence;

/// Sum of the label losses of the final hidden states `h [T, C]` under `w [V, C]`.
pub(crate) fn loss(h: &Tensor, w: &Tensor, seq: &PackedSequence, block: usize) -> Result<f64> {
    Ok(token_losses(h, w, seq, block)?.iter().sum())
}

/// The loss of every label of `seq`, in label order.
pub(crate) fn token_losses(
    h: &Tensor,
    w: &Tensor,
    seq: &PackedSequence,
    block: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(seq.num_labels());
    for (pos, tgt) in blocks(seq.label_positions(), seq.label_targets(), block) {
        let hb = h.index_select(&Tensor::new(pos, h.device())?, 0)?; // [B, C]
        let logits = linear::forward(&hb, w)?; // [B, V]: 2·B·C·V FLOPs
        let losses = cross_entropy::forward(&logits, &Tensor::new(tgt, h.device())?)?;
        out.extend(losses.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    Ok(out)
}

/// Some labels of a sequence: the positions (rows of `h`) and targets of those a rank
/// holds, and how many the whole sequence has (the loss is the mean over those).
pub(crate) struct Labels<'a> {
    pub positions: &'a [u32],
    pub targets: &'a [u32],
    pub of_sequence: usize,
}

/// Sum of the losses of `labels`, and the gradients `(dh [T, C], dw [V, C])` of their
/// share of the sequence's token-mean loss (their sum over `labels.of_sequence`; all of it
/// when `labels` are all the sequence's).
pub(crate) fn loss_and_grads(
    h: &Tensor,
    w: &Tensor,
    labels: &Labels,
    block: usize,
) -> Result<(f64, Tensor, Tensor)> {
    let dloss = 1.0 / labels.of_sequence.max(1) as f64;
    let mut loss_sum = 0.0;
    // The output projection's gradient is summed over the blocks in f32 (see `precision`).
    let mut dw = Tensor::zeros(w.dims(), accum_dtype(w.dtype()), w.device())?;
    let mut dh_rows = Vec::new();
    for (pos, tgt) in blocks(labels.positions, labels.targets, block) {
        let hb = h.index_select(&Tensor::new(pos, h.device())?, 0)?; // [B, C]
        let logits = linear::forward(&hb, w)?; // [B, V]: 2·B·C·V FLOPs
        let tgt = Tensor::new(tgt, h.device())?;
        let (losses, dlogits) = cross_entropy::forward_backward(&logits, &tgt, dloss)?;
        loss_sum += sum_f64(&losses)?;
        let (dhb, dwb) = linear::backward(&dlogits, &hb, w)?; // 4·B·V·C FLOPs
        dw = (dw + precision::widen(&dwb)?)?;
        dh_rows.push(dhb);
    }
    let mut dh = h.zeros_like()?;
    if !dh_rows.is_empty() {
        // one scatter of all labeled rows (positions are distinct)
        let pos = Tensor::new(labels.positions, h.device())?;
        dh = dh.index_add(&pos, &Tensor::cat(&dh_rows, 0)?, 0)?;
    }
    Ok((loss_sum, dh, dw))
}

/// `(positions, targets)` of the labels, `block` at a time.
fn blocks<'a>(
    positions: &'a [u32],
    targets: &'a [u32],
    block: usize,
) -> impl Iterator<Item = (&'a [u32], &'a [u32])> {
    let block = block.max(1);
    positions.chunks(block).zip(targets.chunks(block))
}

fn sum_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}
