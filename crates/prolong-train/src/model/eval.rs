//! Forward-only evaluation: the loss of every label token, for perplexity by position.

use super::{LOSS_BLOCK_TOKENS, Llama, head};
use crate::error::Result;
use crate::ops::rmsnorm;
use prolong_packed::PackedSequence;

impl Llama {
    /// `(t, loss)` for every label of `seq`, in order: `t` is the label position (the
    /// token at `t` predicts `input_ids[t + 1]`, see [`PackedSequence`]) and `loss` the
    /// cross-entropy of that prediction. Computed [`LOSS_BLOCK_TOKENS`] labels at a time,
    /// like [`loss`](Self::loss), whose `loss_sum` is the sum of these.
    pub fn token_losses(&self, seq: &PackedSequence) -> Result<Vec<(usize, f64)>> {
        let (h, _) = self.trunk(seq, false)?;
        let (h, _) = rmsnorm::forward(&h, &self.params.norm, self.config.rms_norm_eps)?;
        let losses = head::token_losses(&h, self.params.output_weight(), seq, LOSS_BLOCK_TOKENS)?;
        Ok(seq
            .label_positions()
            .iter()
            .map(|&t| t as usize)
            .zip(losses)
            .collect())
    }
}
