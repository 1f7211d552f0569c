//! One optimizer step's forward and backward over a rank's micro-batches, and the sums
//! over the ranks that turn the ranks' parts into the step's loss and gradient.
//!
//! Each rank sums its micro-batches' weighted losses and gradients; the sums are added
//! over the ranks (f32 for the gradients; f64 in rank order for the losses, the counts
//! and the FLOPs) and divided once, as one rank divides its own sum. How the gradient
//! sums move depends on `[parallel] shard`: all-reduced whole (`none`, DDP), or
//! reduce-scattered into each rank's shard (`grad_op`: once per step; `full`: unit by
//! unit as backward produces them, see [`super::fsdp`]).
//!
//! Under sequence parallelism (`sp`, Ulysses) every rank of an SP group trains the same
//! micro-batches, each its token shard (`Llama::loss_and_grads_part`): its sums are its
//! shard's share, and only group rank 0 counts the sequences (or labels) and their
//! FLOPs, so that the sums over all ranks are the step's.

use candle_core::Tensor;

use super::TrainError;
use super::sharded::ShardedState;
use crate::config::LlamaConfig;
use crate::dist::group::{ProcessGroup, Solo, as_bytes, as_bytes_mut};
use crate::dist::ulysses::SeqGroup;
use crate::metrics::{StepFlops, train_flops};
use crate::model::Llama;
use crate::optim::Gradients;
use crate::stage::LossNormalisation;
use prolong_packed::PackedSequence;

/// One optimizer step's forward/backward over its micro-batches: the step's loss and
/// its fp32 gradient, accumulated in order. With [`LossNormalisation::Sequence`] both
/// are the mean over the micro-batches of each one's token-mean; with
/// [`LossNormalisation::Token`] the token mean over every label of the step
/// (`Σ_i n_i·mean_i / Σ_i n_i`, `n_i` the labels of micro-batch `i`).
pub fn accumulate(
    model: &Llama,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
) -> Result<(f64, Gradients), TrainError> {
    accumulate_part(model, seqs, loss_block, norm, None)?.finish(&Solo)
}

/// One rank's share of a step, not yet divided: the weighted sums of its micro-batches'
/// losses and gradients, the count the step divides by and the FLOPs they took.
pub struct StepPart {
    loss: f64,
    count: f64,
    flops: StepFlops,
    grads: Gradients,
}

/// A point inside a step where kill tests stop a rank by progress: after each
/// micro-batch's backward, counted with the write steps of prolong_mds's kill hook
/// (`PROLONG_KILL_AT_WRITE`), so a test can kill one rank in the middle of a step.
pub(super) fn progress_point() {
    prolong_mds::write_step();
}

/// The weight of a micro-batch's loss and gradient in the step's sums.
pub(super) fn weight(norm: LossNormalisation, label_tokens: usize) -> f64 {
    match norm {
        LossNormalisation::Sequence => 1.0,
        LossNormalisation::Token => label_tokens as f64,
    }
}

/// What the step divides by for `seqs` (nothing on SP ranks other than the group's
/// first: the group shares the sequences).
pub(super) fn count(
    norm: LossNormalisation,
    seqs: &[PackedSequence],
    sp: Option<&SeqGroup>,
) -> f64 {
    if sp.is_some_and(|g| g.rank() != 0) {
        return 0.0;
    }
    (match norm {
        LossNormalisation::Sequence => seqs.len(),
        LossNormalisation::Token => seqs.iter().map(|s| s.num_labels()).sum(),
    }) as f64
}

/// The model FLOPs of training on `seqs` (counted once per SP group, as [`count`]).
pub(super) fn flops(
    config: &LlamaConfig,
    seqs: &[PackedSequence],
    sp: Option<&SeqGroup>,
) -> StepFlops {
    let mut f = StepFlops::default();
    if sp.is_some_and(|g| g.rank() != 0) {
        return f;
    }
    for s in seqs {
        f += train_flops(config, s);
    }
    f
}

/// The sums of [`accumulate`] over `seqs` (one rank's micro-batches of a step; with
/// `sp`, this rank's token shard of each).
pub fn accumulate_part(
    model: &Llama,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
    sp: Option<&SeqGroup>,
) -> Result<StepPart, TrainError> {
    let mut grads = Gradients::default();
    let mut loss = 0.0;
    for seq in seqs {
        // Under SP `out.loss` is the shard's share of the sequence mean and
        // `out.label_tokens` the whole sequence's, so both weights stay right.
        let (out, g) = model.loss_and_grads_part(seq, loss_block, sp)?;
        let w = weight(norm, out.label_tokens);
        loss += w * out.loss;
        grads.add_scaled(&g, w)?;
        progress_point();
    }
    Ok(StepPart {
        loss,
        count: count(norm, seqs, sp),
        flops: flops(model.config(), seqs, sp),
        grads,
    })
}

/// The loss, count and FLOPs summed over the ranks, in rank order (the same f64 on
/// every rank).
pub(super) fn sum_totals(
    group: &dyn ProcessGroup,
    loss: f64,
    count: f64,
    flops: StepFlops,
) -> Result<(f64, f64, StepFlops), TrainError> {
    if group.size() == 1 {
        return Ok((loss, count, flops));
    }
    let mine = [loss, count, flops.model, flops.recompute];
    let mut all = vec![0f64; 4 * group.size()];
    group.all_gather(as_bytes(&mine), as_bytes_mut(&mut all))?;
    let sum = |i: usize| all.chunks(4).map(|p| p[i]).sum::<f64>();
    Ok((
        sum(0),
        sum(1),
        StepFlops {
            model: sum(2),
            recompute: sum(3),
        },
    ))
}

impl StepPart {
    /// Adds the parts of every rank of `group` and divides: the step's loss and gradient.
    /// On one rank nothing moves and the arithmetic is exactly [`accumulate`]'s.
    pub fn finish(self, group: &dyn ProcessGroup) -> Result<(f64, Gradients), TrainError> {
        let (loss, grads, _) = self.finish_with_flops(group)?;
        Ok((loss, grads))
    }

    /// [`finish`](Self::finish), and the step's FLOPs over all ranks.
    pub fn finish_with_flops(
        mut self,
        group: &dyn ProcessGroup,
    ) -> Result<(f64, Gradients, StepFlops), TrainError> {
        if group.size() > 1 {
            // Gradient sums in f32, one tensor at a time (every rank holds every
            // tensor: the step's micro-batches are at least the ranks). On the device
            // where the backend can (NCCL); else through the host: 4 bytes per
            // parameter down and 4 up on a GPU.
            for t in self.grads.tensors.iter_mut() {
                if let Some(sum) = group.all_reduce_sum_on_device(t)? {
                    *t = sum;
                    continue;
                }
                let mut v = t.flatten_all()?.to_vec1::<f32>()?;
                group.all_reduce_sum(&mut v)?;
                *t = Tensor::from_vec(v, t.shape(), t.device())?;
            }
        }
        let (loss, count, flops) = sum_totals(group, self.loss, self.count, self.flops)?;
        let n = count.max(1.0);
        self.grads.scale(1.0 / n)?;
        Ok((loss / n, self.grads, flops))
    }
}

/// A sharded step's result on one rank: the step's loss, this rank's shard of its
/// (divided) gradient, and the step's FLOPs over all ranks.
pub struct ShardedStep {
    pub loss: f64,
    pub shard: Vec<f32>,
    pub flops: StepFlops,
}

/// The step over `seqs` (this rank's micro-batches) with `grad_op` sharding: the
/// rank's summed gradient reduce-scattered once (`full` is `super::fsdp`'s).
pub fn accumulate_sharded(
    model: &Llama,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
    state: &ShardedState,
    group: &dyn ProcessGroup,
    sp: Option<&SeqGroup>,
) -> Result<ShardedStep, TrainError> {
    let part = accumulate_part(model, seqs, loss_block, norm, sp)?;
    let shard = state.reduce_scatter(&part.grads, group)?;
    sharded_step(group, part.loss, part.count, part.flops, shard)
}

/// A rank's sums and gradient shard turned into the step's: the sums added over the
/// ranks, then the shard and the loss divided by the step's count.
pub(super) fn sharded_step(
    group: &dyn ProcessGroup,
    loss: f64,
    count: f64,
    flops: StepFlops,
    mut shard: Vec<f32>,
) -> Result<ShardedStep, TrainError> {
    let (loss, count, flops) = sum_totals(group, loss, count, flops)?;
    let inv = (1.0 / count.max(1.0)) as f32; // as Gradients::scale's f32 affine
    shard.iter_mut().for_each(|g| *g *= inv);
    Ok(ShardedStep {
        loss: loss / count.max(1.0),
        shard,
        flops,
    })
}
