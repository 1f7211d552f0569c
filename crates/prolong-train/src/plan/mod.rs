//! `prolong-train plan`: what one rank of a multi-device run holds in memory, what a
//! step computes and moves, and whether it fits: before anyone books a cluster.
//!
//! The model is the design of fully sharded data parallelism (FSDP / ZeRO) with
//! Ulysses sequence parallelism, per rank:
//!
//! | part | bytes |
//! |---|---|
//! | owned f32 master weights, gradient accumulator, Adam m and v | 16 P / N (full) |
//! | gathered bf16 units (largest, current + prefetched) | 2 × 2 × U |
//! | saved layer inputs (full recompute) | L × T × H × 2 |
//! | one layer's backward working set | ≈ T × (4H + 3F) × 2 |
//! | logits block and its gradient (f32) | 2 × B × V × 4 |
//! | communication buckets (the largest unit's f32 gradient, two in flight) | 2 × U × 4 |
//! | Ulysses attention over the whole sequence (SP > 1) | S × (2 q_dim + 4 kv_dim) / SP × 2 × 2 |
//!
//! with P parameters, L layers, H hidden, F FFN width, V vocabulary, N ranks, S
//! tokens per sequence, T = S × micro-batch / SP tokens per rank, B the loss block,
//! U the parameters of the largest FSDP unit (model/units.rs: the embedding, a
//! decoder layer, or the final norm with the output projection; at the head of a
//! tied model the head with the embedding).
//! The state is sharded over all N ranks, not only the DP = N / SP data-parallel
//! groups: the ranks of a sequence-parallel group hold different tokens, so their
//! gradients are summed like any other rank's (as DeepSpeed-Ulysses with ZeRO-3 and
//! ProLong's FSDP over the whole world do). A plan fits when the total is at most
//! 90% of the device's memory: the rest is for the CUDA context, NCCL's buffers and
//! the allocator's fragmentation. The lighter shard modes replicate what full sharding splits: `grad_op`
//! (ZeRO-2) keeps the bf16 weights whole (2P) and shards the f32 state; `none` (DDP)
//! keeps everything whole (2P bf16 + 16P f32). Without recomputation every layer
//! keeps the inputs of its matmuls and nonlinearities instead of one input.
//!
//! FLOPs count each sequence as one document labelled throughout (the most attention
//! a sequence can cost), with `metrics::pass_flops`, the trainer's own count.
//!
//! ProLong's own switches map onto these: its `--fsdp` 1/2/3 (FULL_SHARD,
//! SHARD_GRAD_OP, NO_SHARD) are `full`, `grad_op` and `none`; `--seq_parallel_size`
//! is `--sp`; `--gradient_checkpointing` is recompute.
//!
//! Llama-3-8B at 64K on 8 ranks, full sharding and recompute, whose largest unit is
//! the output projection (U = 128256 × 4096 + 4096 = 525M, against 218M in a layer):
//! 16.1 + 2.1 + 17.2 + 7.8 + 2.1 + 4.2 ≈ 49.4 GB, which fits an 80 GB GPU (72 GB
//! usable); 512K with SP 8 adds ≈ 2.7 GB of whole-sequence attention (52.1 GB).

use crate::config::LlamaConfig;

mod cpu;
mod gpu;
mod table;

use cpu::cpu_parts;
use gpu::gpu_parts;
pub use table::gb;

/// How the training state is split over the data-parallel ranks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ShardMode {
    /// FSDP FULL_SHARD / ZeRO-3 (ProLong's fsdp 1): weights, gradients and optimizer
    /// state all sharded; each layer's weights gathered when used.
    Full,
    /// FSDP SHARD_GRAD_OP / ZeRO-2 (fsdp 2): bf16 weights replicated, gradients and
    /// optimizer state sharded.
    GradOp,
    /// DDP (fsdp 3, NO_SHARD): everything replicated, gradients all-reduced.
    None,
}

/// What the plan models: the GPU design (per-layer gathering, bf16 compute) or the
/// trainer as it runs on CPU ranks today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanDevice {
    Gpu,
    Cpu,
}

/// Marks a part only rank 0 holds.
const RANK0_ONLY: &str = "(rank 0 only)";

/// The share of a device's memory a plan may use.
pub const USABLE: f64 = 0.9;

/// What is planned.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub model: LlamaConfig,
    /// Tokens per packed sequence.
    pub seq_len: usize,
    /// Sequences per micro-batch on one data-parallel group.
    pub micro_batch: usize,
    /// Tokens per optimizer step (the global batch).
    pub tokens_per_step: u64,
    /// Ranks in all (one per GPU).
    pub world: usize,
    /// Ulysses sequence-parallel group size (1: none).
    pub sp: usize,
    pub shard: ShardMode,
    /// Recompute each layer in the backward (activation checkpointing).
    pub recompute: bool,
    /// Labelled tokens per cross-entropy block.
    pub loss_block: usize,
    /// Memory of one device, bytes.
    pub device_bytes: u64,
    /// Bytes per element of the compute dtype (2: bf16, 4: f32).
    pub dtype_bytes: usize,
    pub device: PlanDevice,
}

/// One line of the memory table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Part {
    pub name: &'static str,
    pub bytes: f64,
}

/// The plan for one rank.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub parameters: u64,
    pub layer_parameters: u64,
    /// The most parameters `full` sharding holds gathered at once: the largest FSDP
    /// unit (model/units.rs), for Llama-3-8B the output projection with the final norm.
    pub largest_unit_parameters: u64,
    pub dp: usize,
    pub tokens_per_rank: usize,
    pub parts: Vec<Part>,
    /// The busiest rank's total (rank 0's, where a part is rank 0's alone).
    pub total_bytes: f64,
    /// Of the total, what only rank 0 holds (`--device cpu`: Open MPI's reduce-scatter
    /// buffer); the other ranks hold `total_bytes - rank0_only_bytes`.
    pub rank0_only_bytes: f64,
    pub device_bytes: u64,
    pub fits: bool,
    /// Model FLOPs of one optimizer step over the whole world (one document per
    /// sequence: the most attention a sequence can cost).
    pub step_model_flops: f64,
    /// FLOPs executed, recomputation included.
    pub step_hardware_flops: f64,
    /// Bytes one rank sends per optimizer step in collectives (ring algorithms:
    /// an all-gather or reduce-scatter of n bytes sends n·(DP−1)/DP).
    pub step_bytes_sent_per_rank: f64,
    /// Knobs that would make a plan that does not fit fit (empty when it fits).
    pub suggestions: Vec<String>,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("--sp {sp} does not divide --gpus {world}")]
    SpWorld { sp: usize, world: usize },
    #[error("--sp {sp} does not divide the sequence length {seq_len}")]
    SpSeq { sp: usize, seq_len: usize },
    #[error(
        "--sp {sp} does not divide the {heads} attention heads (Ulysses gives each rank whole heads)"
    )]
    SpHeads { sp: usize, heads: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// Adds one row of the memory table: what is held, and its bytes per rank. The
/// designs' part functions ([`cpu_parts`], [`gpu_parts`]) each call it once a row.
type AddPart<'a> = dyn FnMut(&'static str, f64) + 'a;

/// What every plan holds besides the state and the saved inputs: one layer's backward
/// working set (in the compute dtype) and the logits block with its gradient (f32).
fn layer_and_logits(input: &PlanInput, t: f64, part: &mut AddPart<'_>) {
    let m = &input.model;
    let (h, f) = (m.hidden_size as f64, m.intermediate_size as f64);
    part(
        "one layer's backward working set",
        t * (4.0 * h + 3.0 * f) * input.dtype_bytes as f64,
    );
    part(
        "logits block and its gradient (f32)",
        2.0 * input.loss_block.min(input.seq_len * input.micro_batch) as f64
            * m.vocab_size as f64
            * 4.0,
    );
}

/// Parameters of the whole model and of one decoder layer.
pub fn parameter_counts(cfg: &LlamaConfig) -> (u64, u64) {
    let shapes = cfg.param_shapes();
    let count = |filter: &dyn Fn(&str) -> bool| -> u64 {
        shapes
            .iter()
            .filter(|(n, _)| filter(n))
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum()
    };
    (
        count(&|_| true),
        count(&|n: &str| n.starts_with("model.layers.0.")),
    )
}

impl PlanInput {
    pub fn plan(&self) -> Result<Plan, PlanError> {
        for (name, v) in [
            ("--gpus", self.world),
            ("--sp", self.sp),
            ("--micro-batch", self.micro_batch),
            ("the sequence length", self.seq_len),
        ] {
            if v == 0 {
                return Err(PlanError::Zero(name));
            }
        }
        let (world, sp) = (self.world, self.sp);
        if world % sp != 0 {
            return Err(PlanError::SpWorld { sp, world });
        }
        if self.seq_len % sp != 0 {
            return Err(PlanError::SpSeq {
                sp,
                seq_len: self.seq_len,
            });
        }
        let m = &self.model;
        if m.num_attention_heads % sp != 0 {
            return Err(PlanError::SpHeads {
                sp,
                heads: m.num_attention_heads,
            });
        }
        let dp = world / sp;
        let (p_all, p_layer) = parameter_counts(m);
        let p = p_all as f64;
        let (q_dim, kv_dim) = (m.q_dim() as f64, m.kv_dim() as f64);
        let layers = m.num_hidden_layers as f64;
        let t = (self.seq_len * self.micro_batch / sp) as f64;
        // State is sharded over every rank (see the module doc).
        let n = world as f64;

        let mut parts = Vec::new();
        let mut part = |name: &'static str, bytes: f64| parts.push(Part { name, bytes });
        if self.device == PlanDevice::Cpu {
            cpu_parts(self, p, t, &mut part);
        } else {
            gpu_parts(self, p, t, &mut part);
        }
        let total: f64 = parts.iter().map(|p| p.bytes).sum();
        let rank0_only_bytes: f64 = parts
            .iter()
            .filter(|p| p.name.contains(RANK0_ONLY))
            .map(|p| p.bytes)
            .sum();

        // FLOPs of the step's sequences, each one document labelled throughout (the
        // most attention a sequence can cost); recomputation adds most of a forward.
        let sequences = self.tokens_per_step as f64 / self.seq_len as f64;
        let s = self.seq_len as f64;
        let per_seq = crate::metrics::pass_flops(m, s, s * (s + 1.0) / 2.0, s - 1.0);
        let model_flops = per_seq.model * sequences;
        let hardware_flops = if self.recompute {
            per_seq.executed() * sequences
        } else {
            model_flops
        };

        // Bytes each rank sends per step: weights gathered for the forward (and again
        // for the backward's recompute), gradients reduce-scattered; Ulysses moves
        // q, k, v and the output there and back (and their gradients) per layer.
        let micro_batches = (sequences / (dp as f64 * self.micro_batch as f64)).max(1.0);
        let ring = (n - 1.0) / n;
        let dp_bytes = match self.shard {
            ShardMode::Full => {
                let gathers = if self.recompute { 2.0 } else { 1.0 };
                micro_batches * (gathers * 2.0 * p + 4.0 * p) * ring
            }
            // Gradients reduce-scattered each micro-batch, weights gathered after the step.
            ShardMode::GradOp => micro_batches * 4.0 * p * ring + 2.0 * p * ring,
            // All-reduce = reduce-scatter + all-gather.
            ShardMode::None => micro_batches * 2.0 * 4.0 * p * ring,
        };
        let sp_bytes = if sp > 1 {
            let per_layer =
                t * (2.0 * q_dim + 2.0 * kv_dim) * 2.0 * 2.0 * (sp as f64 - 1.0) / sp as f64;
            micro_batches * layers * per_layer * if self.recompute { 1.5 } else { 1.0 }
        } else {
            0.0
        };

        let fits = total <= USABLE * self.device_bytes as f64;
        let mut plan = Plan {
            parameters: p_all,
            layer_parameters: p_layer,
            largest_unit_parameters: crate::model::units::most_held(m),
            dp,
            tokens_per_rank: t as usize,
            parts,
            total_bytes: total,
            rank0_only_bytes,
            device_bytes: self.device_bytes,
            fits,
            step_model_flops: model_flops,
            step_hardware_flops: hardware_flops,
            step_bytes_sent_per_rank: dp_bytes + sp_bytes,
            suggestions: Vec::new(),
        };
        if !fits {
            plan.suggestions = self.suggest();
        }
        Ok(plan)
    }

    /// The single knob changes, in the order users reach for them, that make the
    /// plan fit.
    fn suggest(&self) -> Vec<String> {
        let fits = |input: PlanInput| input.plan().is_ok_and(|p| p.fits);
        let mut out = Vec::new();
        if self.shard != ShardMode::Full
            && fits(PlanInput {
                shard: ShardMode::Full,
                ..self.clone()
            })
        {
            out.push("--shard full".into());
        }
        if !self.recompute
            && fits(PlanInput {
                recompute: true,
                ..self.clone()
            })
        {
            out.push("--recompute (activation checkpointing)".into());
        }
        if self.micro_batch > 1
            && fits(PlanInput {
                micro_batch: 1,
                ..self.clone()
            })
        {
            out.push("--micro-batch 1".into());
        }
        let mut sp = self.sp * 2;
        while sp <= self.world {
            if fits(PlanInput { sp, ..self.clone() }) {
                out.push(format!("--sp {sp} (Ulysses sequence parallelism)"));
                break;
            }
            sp *= 2;
        }
        for block in [1024, 512, 256] {
            if block < self.loss_block
                && fits(PlanInput {
                    loss_block: block,
                    ..self.clone()
                })
            {
                out.push(format!("loss_block = {block}"));
                break;
            }
        }
        if out.is_empty() {
            out.push("more or larger devices: no single knob makes it fit".into());
        }
        out
    }
}
