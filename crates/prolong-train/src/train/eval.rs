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
use crate::model::{Llama, LossOutput};
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
        self.evaluate_with(step, |seq| model.loss(seq))
    }

    /// The held-out loss after `step` optimizer steps of the weights whose forward-only
    /// loss of a sequence is `loss` (with `full` sharding: through the units gathered
    /// one at a time, `train/weights.rs`).
    pub fn evaluate_with<E>(
        &self,
        step: u64,
        mut loss: impl FnMut(&PackedSequence) -> Result<LossOutput, E>,
    ) -> Result<EvalRecord, TrainError>
    where
        TrainError: From<E>,
    {
        let (mut sum, mut tokens) = (0.0, 0u64);
        for seq in &self.sequences {
            let out = loss(seq)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::group::Solo;
    use crate::stage::StageConfig;
    use crate::train::init::random_llama;
    use crate::train::run::{TINY_FULL_STAGE, solo_setup};
    use crate::train::weights::{Weights, weights_for};
    use candle_core::DType;

    /// `[parallel] shard = "full"`: the held-out loss forward through the units gathered
    /// one at a time is, bit for bit, [`Llama::loss`]'s over the model gathered whole
    /// (f32 and bf16, three sequences of two documents each), and the evaluation holds
    /// exactly the largest unit's gathered bytes at once, never the model.
    #[test]
    fn full_evaluation_through_units_equals_the_whole_model() {
        let cfg = StageConfig::parse(TINY_FULL_STAGE, std::path::Path::new("test.toml")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let sequences: Vec<PackedSequence> = (0..3u32)
            .map(|s| {
                let ids = (0..24).map(|i| (i * 7 + s * 13) % 64).collect();
                PackedSequence::new(ids, &[[0, 10], [10, 24]], None).unwrap()
            })
            .collect();
        let held = HeldOut {
            samples: Vec::new(),
            sequences,
            every: 1,
        };
        for dtype in [DType::F32, DType::BF16] {
            let s = solo_setup(&cfg, dtype, tmp.path());
            let model = random_llama(&s.llama, 5, 0.02, DType::F32, &s.dev).unwrap();
            let weights = weights_for(&s, model).unwrap();
            let got = weights.evaluate(&s, &held, 7).unwrap();
            let Weights::Sharded { state, model, .. } = &weights else {
                panic!("full sharding keeps sharded weights")
            };
            assert!(model.is_none());
            let peak = state.gathered.peak();
            let units = state.layout.units().len();
            let bytes: Vec<u64> = (0..units).map(|u| state.unit_bytes(u, dtype)).collect();
            assert_eq!(peak, *bytes.iter().max().unwrap(), "{dtype:?}: {bytes:?}");
            assert_eq!(state.gathered.alive(), 0);
            let whole = state.gather_model(&s.llama, dtype, &s.dev, &Solo).unwrap();
            let want = held.evaluate(&whole, 7).unwrap();
            assert_eq!(got.eval_tokens, want.eval_tokens);
            assert!(got.eval_tokens > 0);
            assert_eq!(
                got.eval_loss.to_bits(),
                want.eval_loss.to_bits(),
                "{dtype:?}: {} vs {}",
                got.eval_loss,
                want.eval_loss
            );
        }
    }
}
