//! The CPU trainer's memory, part by part, as `--device cpu` plans it.

use super::{AddPart, PlanInput, ShardMode, layer_and_logits};
use crate::model::units::{most_held, unit_sizes};

/// The trainer as it runs on CPU ranks today (`--device cpu`), part by part, read from
/// its code (train/weights.rs, train/step.rs, train/sharded.rs) rather than the GPU
/// design above:
///
/// * compute weights: the whole model in the compute dtype on every rank in `none`
///   and `grad_op`; `full` gathers one unit at a time ([`full_parts`]);
/// * f32 state: Adam m and v, and the f32 masters unless the compute dtype is f32
///   (the optimizer's update then makes the weights and the masters one tensor);
///   `grad_op` holds 1/N of masters, m and v;
/// * gradients: at the end of a micro-batch's backward its gradient (f32) and the
///   step's accumulated one are alive together, and the reduction's flat f32 vector
///   replaces one of them: two whole-model f32 copies;
/// * sharded gradient: the reduce-scattered shard;
/// * activations: the model always recomputes (model/mod.rs), so the saved layer
///   inputs and one layer's working set as on a GPU, in the compute dtype;
/// * logits block and its gradient (f32);
/// * sharded on more than one rank: rank 0 also holds Open MPI's reduce-scatter buffer
///   (measured: N/2 whole f32 gradients at N = 2 and 4 ranks);
/// * `grad_op` on one rank peaks in the gather after the update instead (below).
///
/// The parts are the steady state from the second step on: Adam's moments start as
/// zeros that are never touched (untouched pages are not resident) until the first
/// update writes them. Not modelled: the allocator's retained free memory (the
/// comparison with measured peaks in tests/it/dist_group/plan.rs runs glibc with a fixed mmap
/// threshold, so that freed buffers leave the resident set) and candle's short-lived
/// per-tensor temporaries (the optimizer's new m, v and weights of one tensor at a
/// time: ≈ 7% of the `none` total for the test's model, where the vocabulary
/// matrices are 43% of the parameters).
pub(super) fn cpu_parts(input: &PlanInput, p: f64, t: f64, part: &mut AddPart<'_>) {
    let m = &input.model;
    let h = m.hidden_size as f64;
    let wb = input.dtype_bytes as f64;
    let n = input.world as f64;
    if input.shard == ShardMode::Full {
        return full_parts(input, p, t, part);
    }
    if input.shard == ShardMode::GradOp && input.world == 1 {
        // One rank: the gather after the update (sharded.rs, gather_model) holds more
        // than the step: the gathered bytes and the model made from them, beside the
        // masters' shard and its cast (2 + 6/N model copies against 3 + 4/N).
        part("gathered compute weights: buffer and model", 2.0 * wb * p);
        part("owned f32 master weights, Adam m and v", 12.0 * p / n);
        part("gradient shard", 4.0 * p / n);
        part(
            "the masters' shard and its cast, for the gather",
            (4.0 + wb) * p / n,
        );
        return;
    }
    part("compute weights (whole model, every rank)", wb * p);
    let masters = if input.dtype_bytes == 4 { 0.0 } else { 4.0 };
    match input.shard {
        ShardMode::None => part(
            "f32 Adam m and v (and masters unless f32)",
            (8.0 + masters) * p,
        ),
        _ => part("owned f32 master weights, Adam m and v", 12.0 * p / n),
    }
    part("gradients: micro-batch's and accumulated (f32)", 8.0 * p);
    if input.shard == ShardMode::GradOp {
        part("reduce-scattered gradient shard", 4.0 * p / n);
    }
    if input.shard == ShardMode::GradOp && input.world > 1 {
        // Measured, not derived: rank 0 alone peaks higher, by
        // one whole f32 gradient at 2 ranks and 1.8 at 4 (Open MPI's
        // reduce_scatter_block on one node reduces onto rank 0 before scattering);
        // N/2 gradients fits both within 10%.
        part(
            "Open MPI reduce-scatter buffer (rank 0 only)",
            4.0 * p * n / 2.0,
        );
    }
    let layers = m.num_hidden_layers as f64;
    part("saved layer inputs (recompute)", layers * t * h * wb);
    layer_and_logits(input, t, part);
}

/// `full` (train/fsdp.rs): the compute weights exist one unit at a time, so a rank
/// peaks either in a micro-batch's pass, at the largest unit, or in the optimizer
/// step; the plan is the larger of the two (the rank's high-water mark). Each term is
/// read from the code; the multiples of the largest unit were then checked against
/// the measured peaks of 1, 2 and 4 ranks (tests/it/dist_group/plan.rs: within 4%).
///
/// * both: the owned f32 masters, Adam m and v (12 P / N);
/// * the pass: the gradient shard accumulator (4 P / N; fresh zero pages, not resident
///   until a reduce-scatter adds into them, so only from a rank's second micro-batch
///   of the step on), the largest unit's gathered weights (two units at a tied
///   head), three f32 copies of its gradient (the gradient summed over the loss
///   blocks, its flattened copy and the padded buffer the reduce-scatter sends), the
///   activations, and on rank 0 Open MPI's reduce-scatter buffer (measured at 4
///   ranks: one unit's f32 gradient);
/// * the optimizer step: the step's gradient shard and its per-piece copy (8 P / N)
///   and the update's temporaries of its largest piece (new m, v and masters: 3 f32
///   copies; a piece is a parameter's part of a rank's shard of a unit).
///
/// Not modelled: the initial model, whole, while the sharded state is made from it
/// (wb P + 4 P / N: below the step's peak for this model at any N). An evaluation
/// gathers one unit at a time as the step does, and the checkpoint's HF weights one
/// unit (each tensor written into its file as it arrives).
fn full_parts(input: &PlanInput, p: f64, t: f64, part: &mut AddPart<'_>) {
    let m = &input.model;
    let n = input.world as f64;
    let wb = input.dtype_bytes as f64;
    let largest = unit_sizes(m).into_iter().max().unwrap_or(0) as f64;
    let largest_tensor = m
        .param_shapes()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .max()
        .unwrap_or(0) as f64;
    let piece = largest_tensor.min((largest / n).ceil());
    let dp = (input.world / input.sp) as u64;
    let per_rank = input.tokens_per_step / (input.seq_len * input.micro_batch) as u64 / dp;

    let mut pass: Vec<(&'static str, f64)> = Vec::new();
    if per_rank > 1 {
        pass.push(("gradient shard accumulator (f32)", 4.0 * p / n));
    }
    pass.push((
        "gathered compute weights: the largest unit",
        wb * most_held(m) as f64,
    ));
    pass.push((
        "largest unit's gradient, flat and padded (3 x f32)",
        3.0 * 4.0 * largest,
    ));
    let layers = m.num_hidden_layers as f64;
    pass.push((
        "saved layer inputs (recompute)",
        layers * t * m.hidden_size as f64 * wb,
    ));
    layer_and_logits(input, t, &mut |name, bytes| pass.push((name, bytes)));
    let update = [
        (
            "step's gradient shard and its per-piece copy (f32)",
            8.0 * p / n,
        ),
        (
            "optimizer update of the largest piece (3 f32 copies)",
            3.0 * 4.0 * piece,
        ),
    ];
    let sum = |parts: &[(&'static str, f64)]| parts.iter().map(|p| p.1).sum::<f64>();
    part("owned f32 master weights, Adam m and v", 12.0 * p / n);
    if sum(&pass) >= sum(&update) {
        pass.iter().for_each(|&(name, bytes)| part(name, bytes));
        if input.world > 1 {
            part(
                "Open MPI reduce-scatter buffer, 1 unit (rank 0 only)",
                4.0 * largest,
            );
        }
    } else {
        update.iter().for_each(|&(name, bytes)| part(name, bytes));
    }
}
