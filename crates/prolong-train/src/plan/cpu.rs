//! The CPU trainer's memory, part by part, as `--device cpu` plans it.

use super::{PlanInput, ShardMode};

/// The trainer as it runs on CPU ranks today (`--device cpu`), part by part, read from
/// its code (train/weights.rs, train/step.rs, train/sharded.rs) rather than the GPU
/// design above:
///
/// * compute weights: the whole model in the compute dtype on every rank, in every
///   shard mode. `full` now gathers one unit (embedding, a layer, norm + head) at a
///   time (train/fsdp.rs), so for `full` this model is an upper bound, not yet the
///   per-unit peak (the measured test checks `full` against it as a bound only);
/// * f32 state: Adam m and v, and the f32 masters unless the compute dtype is f32
///   (the optimizer's update then makes the weights and the masters one tensor);
///   `grad_op` and `full` hold 1/N of masters, m and v;
/// * gradients: at the end of a micro-batch's backward its gradient (f32) and the
///   step's accumulated one (or, in `full`, its weighted copy) are alive together, and
///   the reduction's flat f32 vector replaces one of them: two whole-model f32 copies;
/// * sharded gradient: the reduce-scattered shard, and in `full` its accumulator;
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
pub(super) fn cpu_parts(
    input: &PlanInput,
    p: f64,
    t: f64,
    part: &mut dyn FnMut(&'static str, f64),
) {
    let m = &input.model;
    let (h, f, v) = (
        m.hidden_size as f64,
        m.intermediate_size as f64,
        m.vocab_size as f64,
    );
    let wb = input.dtype_bytes as f64;
    let n = input.world as f64;
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
    match input.shard {
        ShardMode::None => {}
        ShardMode::GradOp => part("reduce-scattered gradient shard", 4.0 * p / n),
        ShardMode::Full => part("gradient shard and its accumulator", 8.0 * p / n),
    }
    if input.shard != ShardMode::None && input.world > 1 {
        // Measured, not derived: rank 0 alone peaks higher, in both sharded modes, by
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
    part(
        "one layer's backward working set",
        t * (4.0 * h + 3.0 * f) * wb,
    );
    part(
        "logits block and its gradient (f32)",
        2.0 * input.loss_block.min(input.seq_len * input.micro_batch) as f64 * v * 4.0,
    );
}
