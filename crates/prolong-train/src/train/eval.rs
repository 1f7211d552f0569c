//! Held-out evaluation during a stage (the recipe's `[eval]` table).
//!
//! The held-out sequences are taken out of the training streams before the first step
//! ([`MixtureLoader::hold_out`]: the loader never hands them out), read once, and
//! evaluated forward only with the current weights before the first step, every
//! `eval.every` steps and after the last. The held-out loss is the token mean over all
//! their label tokens (not a mean of per-sequence means), so it does not depend on how
//! labels are spread over the sequences.

use crate::data::{Mixture, MixtureLoader, allocate};
use crate::metrics::EvalRecord;
use crate::model::Llama;
use crate::stage::EvalSection;
use prolong_packed::PackedSequence;

use super::TrainError;

/// The held-out sequences of a stage.
pub struct HeldOut {
    /// `(stream, sample)` of each sequence, stream by stream.
    samples: Vec<(usize, usize)>,
    sequences: Vec<PackedSequence>,
    every: u64,
}

impl HeldOut {
    /// Splits `cfg.sequences` over the mixture's streams by its proportions (floor plus a
    /// seeded remainder, as the stage's own sequences are), holds them out of `loader`
    /// and reads them. Call before the loader hands out or restores anything.
    pub fn new(
        cfg: &EvalSection,
        mixture: &Mixture,
        loader: &mut MixtureLoader,
    ) -> Result<Self, TrainError> {
        let per_stream = allocate(&mixture.normalized_proportions()?, cfg.sequences, cfg.seed);
        let samples = loader.hold_out(&per_stream, cfg.seed)?;
        let sequences = samples
            .iter()
            .map(|&(j, sample)| {
                let s = loader.read(j, sample)?;
                Ok(PackedSequence::new(
                    s.input_ids,
                    &s.indices,
                    s.mask.as_deref(),
                )?)
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Self {
            samples,
            sequences,
            every: cfg.every,
        })
    }

    /// `(stream, sample)` of each held-out sequence.
    pub fn samples(&self) -> &[(usize, usize)] {
        &self.samples
    }

    /// Whether to evaluate after `step` of a stage of `steps` (step 0: before the first).
    pub fn due(&self, step: u64, steps: u64) -> bool {
        step == 0 || step == steps || (self.every > 0 && step % self.every == 0)
    }

    /// The held-out loss of `model` after `step` optimizer steps.
    pub fn evaluate(&self, model: &Llama, step: u64) -> Result<EvalRecord, TrainError> {
        let (mut sum, mut tokens) = (0.0, 0u64);
        for seq in &self.sequences {
            let out = model.loss(seq)?;
            sum += out.loss_sum;
            tokens += out.label_tokens as u64;
        }
        Ok(EvalRecord {
            step,
            eval_loss: if tokens > 0 { sum / tokens as f64 } else { 0.0 },
            eval_tokens: tokens,
        })
    }
}
