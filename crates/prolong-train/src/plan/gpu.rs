//! The GPU design's memory, part by part (the table in the module doc of `plan`).

use super::{AddPart, PlanInput, ShardMode, layer_and_logits};
use crate::model::units::{most_held, unit_sizes};

/// One rank's memory on a GPU: per-unit gathering of bf16 weights, sharded f32 state,
/// recomputed layers; `p` is the model's parameters, `t` the tokens per rank. The
/// gathered weights and the communication buckets are counted by FSDP unit
/// (model/units.rs): the largest, not a decoder layer, is what a rank must hold, and
/// for Llama-3-8B that is the output projection (128256 × 4096 + the final norm,
/// 525M parameters against a layer's 218M).
pub(super) fn gpu_parts(input: &PlanInput, p: f64, t: f64, part: &mut AddPart<'_>) {
    let m = &input.model;
    let (h, f) = (m.hidden_size as f64, m.intermediate_size as f64);
    let (q_dim, kv_dim) = (m.q_dim() as f64, m.kv_dim() as f64);
    let layers = m.num_hidden_layers as f64;
    let (world, sp) = (input.world, input.sp);
    // State is sharded over every rank (see the module doc).
    let n = world as f64;
    let wb = input.dtype_bytes as f64;
    let held = most_held(m) as f64;
    let largest = unit_sizes(m).into_iter().max().unwrap_or(0) as f64;
    match input.shard {
        ShardMode::Full => {
            part(
                "owned f32 master weights, gradients, Adam m and v",
                16.0 * p / n,
            );
            part(
                "gathered bf16 units (largest, current + prefetched)",
                2.0 * wb * held,
            );
        }
        ShardMode::GradOp => {
            part("bf16 weights (replicated)", wb * p);
            part(
                "owned f32 master weights, gradients, Adam m and v",
                16.0 * p / n,
            );
        }
        ShardMode::None => {
            part("bf16 weights (replicated)", wb * p);
            part("f32 master weights, gradients, Adam m and v", 16.0 * p);
        }
    }
    if input.recompute {
        part("saved layer inputs (recompute)", layers * t * h * wb);
    } else {
        // Inputs of the norms, q/k/v/o, the MLP's three matmuls and SiLU·mul, in bf16.
        part(
            "saved activations (no recompute)",
            layers * t * (4.0 * h + 2.0 * q_dim + 2.0 * kv_dim + 3.0 * f) * wb,
        );
    }
    layer_and_logits(input, t, part);
    if world > 1 {
        // The largest unit's f32 gradient being reduced while the next one fills.
        part(
            "communication buckets (largest unit, f32)",
            2.0 * largest * 4.0,
        );
    }
    if sp > 1 {
        // q, o for heads/SP query heads and k, v for its KV heads over all S tokens,
        // with their gradients, bf16 (KV heads replicated when fewer than SP).
        let kv_heads = m.n_kv_heads() as f64;
        let kv_per_rank = (kv_heads / sp as f64).max(1.0) * m.head_dim() as f64;
        let s = (input.seq_len * input.micro_batch) as f64;
        part(
            "Ulysses attention over the whole sequence",
            s * (2.0 * q_dim / sp as f64 + 2.0 * kv_per_rank) * wb * 2.0,
        );
    }
}
