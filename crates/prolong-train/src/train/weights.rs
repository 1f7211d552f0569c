//! The weights and optimizer state one rank holds, by `[parallel] shard`, and one
//! optimizer step on them.

use super::TrainError;
use super::eval::HeldOut;
use super::fsdp::{self, UnitGather};
use super::run::Setup;
use super::sharded::ShardedState;
use super::step::{accumulate_part, accumulate_sharded};
use crate::metrics::{EvalRecord, StepFlops};
use crate::model::{Llama, loss_units};
use crate::optim::{AdamW, AdamWConfig};
use crate::stage::{ShardMode, StageConfig};
use prolong_packed::PackedSequence;

/// The weights and optimizer state a rank holds, by `[parallel] shard`.
pub(super) enum Weights {
    /// `none` (DDP): the whole model and optimizer on every rank.
    Replicated { model: Llama, opt: AdamW },
    /// `grad_op` / `full`: this rank's shard of the optimizer state; the compute
    /// weights whole (`grad_op`), or for `full` (`None`) one unit at a time in a step
    /// (`fsdp.rs`), an evaluation and a checkpoint (`checkpoint.rs`), never whole.
    Sharded {
        model: Option<Llama>,
        state: ShardedState,
        full: bool,
    },
}

impl Weights {
    /// The held-out loss of the current weights after `step`: with `full` sharding
    /// forward through the units gathered one at a time ([`UnitGather`]: every rank
    /// takes part in each gather, and evaluates every held-out sequence), never the
    /// whole model; else through the model each rank holds.
    pub fn evaluate(
        &self,
        s: &Setup,
        held_out: &HeldOut,
        step: u64,
    ) -> Result<EvalRecord, TrainError> {
        match self {
            Weights::Replicated { model, .. }
            | Weights::Sharded {
                model: Some(model), ..
            } => held_out.evaluate(model, step),
            Weights::Sharded { state, .. } => {
                let group = s.group.as_ref();
                let mut units = UnitGather::new(state, &s.llama, s.dtype, &s.dev, group);
                held_out.evaluate_with(step, |seq| {
                    loss_units(&s.llama, s.dtype, &s.dev, &mut units, seq)
                })
            }
        }
    }

    /// Parameters of the whole model (all ranks' together).
    pub fn numel(&self) -> usize {
        match self {
            Weights::Replicated { model, .. } => model
                .params()
                .named()
                .iter()
                .map(|(_, t)| t.elem_count())
                .sum(),
            Weights::Sharded { state, .. } => state.layout.numel(),
        }
    }

    /// One optimizer step over this rank's micro-batches `seqs` with learning rate `lr`:
    /// the step's loss, gradient norm (before clipping) and FLOPs over all ranks.
    pub fn step(
        &mut self,
        s: &Setup,
        seqs: &[PackedSequence],
        lr: f64,
        step_no: u64,
    ) -> Result<(f64, f64, StepFlops), TrainError> {
        let t = &s.cfg.train;
        let group = s.group.as_ref();
        let sp = s.seq_group()?;
        let sp = sp.as_ref();
        match self {
            Weights::Replicated { model, opt } => {
                let part = accumulate_part(model, seqs, t.loss_block, t.loss_normalisation, sp)?;
                let (loss, mut grads, flops) = part.finish_with_flops(group)?;
                let grad_norm = grads.clip(t.clip)?;
                check_finite(loss, step_no)?;
                opt.update(model.params_mut(), &grads, lr)?;
                Ok((loss, grad_norm, flops))
            }
            Weights::Sharded { model, state, full } => {
                let step = if *full {
                    // One unit at a time (`fsdp.rs`).
                    let (c, norm) = (&s.llama, t.loss_normalisation);
                    fsdp::accumulate_full(
                        state,
                        c,
                        s.dtype,
                        &s.dev,
                        seqs,
                        t.loss_block,
                        norm,
                        group,
                        sp,
                    )?
                    .0
                } else {
                    let m = model.as_ref().ok_or_else(not_gathered)?;
                    let (block, norm) = (t.loss_block, t.loss_normalisation);
                    let step = accumulate_sharded(m, seqs, block, norm, state, group, sp)?;
                    // The compute weights are stale after the update: gathered anew.
                    drop_model(model, state, s);
                    step
                };
                check_finite(step.loss, step_no)?;
                let mut shard = step.shard;
                let grad_norm = state.clip(&mut shard, t.clip, group)?;
                state.update(&shard, lr)?;
                if !*full {
                    *model = Some(state.gather_model(&s.llama, s.dtype, &s.dev, group)?);
                }
                Ok((step.loss, grad_norm, step.flops))
            }
        }
    }
}

/// Frees `model`, gathered whole from `state`, if it is there.
fn drop_model(model: &mut Option<Llama>, state: &ShardedState, s: &Setup) {
    if model.take().is_some() {
        state.release_model(s.dtype);
    }
}

fn not_gathered() -> TrainError {
    TrainError::Model(crate::Error::Config(
        "the compute weights were not gathered".into(),
    ))
}

fn check_finite(loss: f64, step: u64) -> Result<(), TrainError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Diverged { step, loss })
    }
}

fn adam_config(cfg: &StageConfig) -> AdamWConfig {
    AdamWConfig {
        beta1: cfg.train.beta1,
        beta2: cfg.train.beta2,
        eps: cfg.train.eps,
        weight_decay: cfg.train.weight_decay,
    }
}

/// Fresh weights and optimizer state for `model` in the recipe's shard mode.
pub(super) fn weights_for(s: &Setup, model: Llama) -> Result<Weights, TrainError> {
    let cfg = s.cfg;
    Ok(match cfg.parallel.shard {
        ShardMode::None => {
            let mut opt = AdamW::new(adam_config(cfg), model.params())?;
            opt.set_decay_norms(cfg.train.decay_norms);
            Weights::Replicated { model, opt }
        }
        mode => {
            let state = ShardedState::new(
                model.params(),
                adam_config(cfg),
                cfg.train.decay_norms,
                s.group.rank(),
                s.group.size(),
                mode == ShardMode::Full,
            )?;
            let full = mode == ShardMode::Full;
            Weights::Sharded {
                model: (!full).then_some(model),
                state,
                full,
            }
        }
    })
}
