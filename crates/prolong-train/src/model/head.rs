//! Output projection + cross-entropy, in blocks of labeled tokens, so the `[T, V]` logits
//! never exist at once (only `[block, V]`).

use candle_core::Tensor;

use crate::error::Result;
use crate::ops::{cross_entropy, linear};
use crate::packed::PackedSequence;

/// Sum of the label losses, and with `grad` the gradients `(dh [T, C], dw [V, C])` of the
/// token-mean loss (`sum / N`) w.r.t. the final hidden states `h` and the weight `w`.
pub(crate) fn loss(
    h: &Tensor,
    w: &Tensor,
    seq: &PackedSequence,
    block: usize,
    grad: bool,
) -> Result<(f64, Option<(Tensor, Tensor)>)> {
    let n = seq.num_labels();
    let dev = h.device();
    let dloss = 1.0 / n.max(1) as f64;
    let mut loss_sum = 0.0;
    let mut dw: Option<Tensor> = None;
    let mut dh_rows = Vec::new();
    let positions = seq.label_positions().chunks(block.max(1));
    let targets = seq.label_targets().chunks(block.max(1));
    for (pos, tgt) in positions.zip(targets) {
        let pos = Tensor::new(pos, dev)?;
        let tgt = Tensor::new(tgt, dev)?;
        let hb = h.index_select(&pos, 0)?; // [B, C]
        let logits = linear::forward(&hb, w)?; // [B, V]: 2·B·C·V FLOPs
        if !grad {
            let losses = cross_entropy::forward(&logits, &tgt)?;
            loss_sum += losses
                .to_dtype(candle_core::DType::F64)?
                .sum_all()?
                .to_scalar::<f64>()?;
            continue;
        }
        let (losses, dlogits) = cross_entropy::forward_backward(&logits, &tgt, dloss)?;
        loss_sum += losses
            .to_dtype(candle_core::DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        let (dhb, dwb) = linear::backward(&dlogits, &hb, w)?; // 4·B·V·C FLOPs
        dw = Some(match dw {
            None => dwb,
            Some(acc) => (acc + dwb)?,
        });
        dh_rows.push(dhb);
    }
    if !grad {
        return Ok((loss_sum, None));
    }
    let dw = match dw {
        Some(dw) => dw,
        None => w.zeros_like()?,
    };
    let dh = h.zeros_like()?;
    let dh = if dh_rows.is_empty() {
        dh
    } else {
        let pos = Tensor::new(seq.label_positions(), dev)?;
        dh.index_add(&pos, &Tensor::cat(&dh_rows, 0)?, 0)?
    };
    Ok((loss_sum, Some((dh, dw))))
}
