//! `prolong-train plan`: what one rank of a multi-device run holds in memory, what a
//! step computes and moves, and whether it fits: before anyone books a cluster.
//!
//! The model is the design of fully sharded data parallelism (FSDP / ZeRO) with
//! Ulysses sequence parallelism, per rank:
//!
//! | part | bytes |
//! |---|---|
//! | owned f32 master weights, gradient accumulator, Adam m and v | 16 P / N (full) |
//! | gathered bf16 layer weights (current + prefetched) | 2 × 2 × P_layer |
//! | embedding or output projection while in use | 2 × V × H |
//! | saved layer inputs (full recompute) | L × T × H × 2 |
//! | one layer's backward working set | ≈ T × (4H + 3F) × 2 |
//! | logits block and its gradient (f32) | 2 × B × V × 4 |
//! | communication buckets | ≈ 2 × P_layer × 4 |
//! | Ulysses attention over the whole sequence (SP > 1) | S × (2 q_dim + 4 kv_dim) / SP × 2 × 2 |
//!
//! with P parameters, L layers, H hidden, F FFN width, V vocabulary, N ranks, S
//! tokens per sequence, T = S × micro-batch / SP tokens per rank, B the loss block.
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
//! Llama-3-8B at 64K on 8 ranks, full sharding and recompute: 16.1 + 0.9 + 1.1 +
//! 17.2 + 7.8 + 2.1 + 1.7 ≈ 47 GB, which fits an 80 GB GPU; 512K with SP 8 adds
//! ≈ 2.7 GB of whole-sequence attention.

use std::fmt::Write as _;

use crate::config::LlamaConfig;

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
        let (p, pl) = (p_all as f64, p_layer as f64);
        let (h, f, v) = (
            m.hidden_size as f64,
            m.intermediate_size as f64,
            m.vocab_size as f64,
        );
        let (q_dim, kv_dim) = (m.q_dim() as f64, m.kv_dim() as f64);
        let layers = m.num_hidden_layers as f64;
        let t = (self.seq_len * self.micro_batch / sp) as f64;
        // State is sharded over every rank (see the module doc).
        let n = world as f64;
        let wb = self.dtype_bytes as f64;

        let mut parts = Vec::new();
        let mut part = |name: &'static str, bytes: f64| parts.push(Part { name, bytes });
        if self.device == PlanDevice::Cpu {
            cpu_parts(self, p, t, &mut part);
        } else {
            match self.shard {
                ShardMode::Full => {
                    part(
                        "owned f32 master weights, gradients, Adam m and v",
                        16.0 * p / n,
                    );
                    part(
                        "gathered bf16 layer weights (current + prefetched)",
                        2.0 * wb * pl,
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
            if self.shard == ShardMode::Full {
                part("embedding or output projection while in use", wb * v * h);
            }
            if self.recompute {
                part("saved layer inputs (recompute)", layers * t * h * wb);
            } else {
                // Inputs of the norms, q/k/v/o, the MLP's three matmuls and SiLU·mul, in bf16.
                part(
                    "saved activations (no recompute)",
                    layers * t * (4.0 * h + 2.0 * q_dim + 2.0 * kv_dim + 3.0 * f) * wb,
                );
            }
            part(
                "one layer's backward working set",
                t * (4.0 * h + 3.0 * f) * wb,
            );
            part(
                "logits block and its gradient (f32)",
                2.0 * self.loss_block.min(self.seq_len * self.micro_batch) as f64 * v * 4.0,
            );
            if world > 1 {
                part("communication buckets", 2.0 * pl * 4.0);
            }
            if sp > 1 {
                // q, o for heads/SP query heads and k, v for its KV heads over all S tokens,
                // with their gradients, bf16 (KV heads replicated when fewer than SP).
                let kv_heads = m.n_kv_heads() as f64;
                let kv_per_rank = (kv_heads / sp as f64).max(1.0) * m.head_dim() as f64;
                let s = (self.seq_len * self.micro_batch) as f64;
                part(
                    "Ulysses attention over the whole sequence",
                    s * (2.0 * q_dim / sp as f64 + 2.0 * kv_per_rank) * wb * 2.0,
                );
            }
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
/// comparison with measured peaks in tests/dist_group.rs runs glibc with a fixed mmap
/// threshold, so that freed buffers leave the resident set) and candle's short-lived
/// per-tensor temporaries (the optimizer's new m, v and weights of one tensor at a
/// time: ≈ 7% of the `none` total for the test's model, where the vocabulary
/// matrices are 43% of the parameters).
fn cpu_parts(input: &PlanInput, p: f64, t: f64, part: &mut dyn FnMut(&'static str, f64)) {
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

/// `12.3 GB` (powers of 1000, as GPU memory is sold).
pub fn gb(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

impl Plan {
    /// The human-readable table `prolong-train plan` prints.
    pub fn table(&self, input: &PlanInput) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} parameters ({} per layer); {} ranks = DP {} x SP {}; shard {:?}, recompute {}",
            self.parameters,
            self.layer_parameters,
            input.world,
            self.dp,
            input.sp,
            input.shard,
            if input.recompute { "on" } else { "off" },
        );
        let _ = writeln!(
            s,
            "{} tokens per sequence, {} per rank per micro-batch\n\nmemory per rank:",
            input.seq_len, self.tokens_per_rank
        );
        for p in &self.parts {
            let _ = writeln!(s, "  {:<52} {:>10}", p.name, gb(p.bytes));
        }
        let _ = writeln!(
            s,
            "  {:<52} {:>10}  of {} usable ({:.0}% of {}) -> {}",
            "total",
            gb(self.total_bytes),
            gb(USABLE * self.device_bytes as f64),
            USABLE * 100.0,
            gb(self.device_bytes as f64),
            if self.fits { "fits" } else { "DOES NOT FIT" }
        );
        let _ = writeln!(
            s,
            "\nper optimizer step ({} tokens): {:.3e} model FLOPs, {:.3e} executed; {} sent per rank",
            input.tokens_per_step,
            self.step_model_flops,
            self.step_hardware_flops,
            gb(self.step_bytes_sent_per_rank)
        );
        for hint in &self.suggestions {
            let _ = writeln!(s, "would fit with: {hint}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta-Llama-3-8B's shape: the config.json the README's plan examples use.
    pub fn llama3_8b() -> LlamaConfig {
        LlamaConfig::from_json(include_str!("../../../pipelines/models/llama-3-8b.json")).unwrap()
    }

    fn stage1() -> PlanInput {
        PlanInput {
            model: llama3_8b(),
            seq_len: 65536,
            micro_batch: 1,
            tokens_per_step: 4_194_304,
            world: 8,
            sp: 1,
            shard: ShardMode::Full,
            recompute: true,
            loss_block: 2048,
            device_bytes: 80_000_000_000,
            dtype_bytes: 2,
            device: PlanDevice::Gpu,
        }
    }

    #[test]
    fn llama3_8b_has_its_published_parameter_count() {
        let (p, pl) = parameter_counts(&llama3_8b());
        assert_eq!(p, 8_030_261_248);
        // 4096·(4096 + 2·1024 + 4096) + 3·4096·14336 + 2·4096
        assert_eq!(pl, 218_112_000);
    }

    /// The worked example: each part by hand, and stage 1 fits 8×80 GB.
    #[test]
    fn stage1_64k_fits_eight_80gb_gpus_with_full_sharding() {
        let plan = stage1().plan().unwrap();
        let by_name = |prefix: &str| {
            plan.parts
                .iter()
                .find(|p| p.name.starts_with(prefix))
                .unwrap()
                .bytes
        };
        let p = 8_030_261_248.0;
        assert_eq!(by_name("owned f32"), 16.0 * p / 8.0);
        assert_eq!(by_name("gathered"), 4.0 * 218_112_000.0);
        assert_eq!(by_name("embedding"), 2.0 * 128256.0 * 4096.0);
        assert_eq!(by_name("saved layer inputs"), 32.0 * 65536.0 * 4096.0 * 2.0);
        assert_eq!(
            by_name("one layer"),
            65536.0 * (4.0 * 4096.0 + 3.0 * 14336.0) * 2.0
        );
        assert_eq!(by_name("logits"), 2.0 * 2048.0 * 128256.0 * 4.0);
        assert_eq!(by_name("communication"), 8.0 * 218_112_000.0);
        assert!(
            (plan.total_bytes / 1e9 - 46.8).abs() < 0.1,
            "{}",
            plan.total_bytes
        );
        assert!(plan.fits);
        assert!(plan.suggestions.is_empty());
    }

    /// Replicated state alone is 18 bytes a parameter: 8B does not fit, and the plan
    /// names full sharding as the fix.
    #[test]
    fn ddp_does_not_fit_and_full_sharding_is_suggested() {
        let plan = PlanInput {
            shard: ShardMode::None,
            ..stage1()
        }
        .plan()
        .unwrap();
        assert!(plan.total_bytes > 18.0 * 8.03e9);
        assert!(!plan.fits);
        assert_eq!(plan.suggestions[0], "--shard full");
    }

    /// 512K on 8 ranks: too much without SP, and with SP 4 (77 GB, over the 72 GB
    /// usable); SP 8 brings the per-rank tokens back to 64K and fits.
    #[test]
    fn stage2_512k_fits_with_sp_8_only() {
        let s2 = PlanInput {
            seq_len: 524_288,
            tokens_per_step: 8 * 524_288,
            ..stage1()
        };
        let no_sp = s2.plan().unwrap();
        assert!(!no_sp.fits);
        assert!(
            no_sp.suggestions.iter().any(|s| s.starts_with("--sp 8")),
            "{:?}",
            no_sp.suggestions
        );
        let sp8 = PlanInput { sp: 8, ..s2 }.plan().unwrap();
        assert!(sp8.fits, "{}", sp8.total_bytes);
        assert_eq!(sp8.tokens_per_rank, 65536);
        let ulysses = sp8
            .parts
            .iter()
            .find(|p| p.name.starts_with("Ulysses"))
            .unwrap();
        // 524,288 × (2·4096/8 + 2·128) × 2 bytes × 2 (with gradients) ≈ 2.7 GB.
        assert_eq!(ulysses.bytes, 524_288.0 * (1024.0 + 256.0) * 4.0);
    }

    /// 6 FLOPs per parameter and token for the layers' matmuls, causal attention over
    /// one 64K document, the output projection on its 65,535 labels; 64 sequences.
    #[test]
    fn model_flops_are_six_n_per_token_plus_attention() {
        let plan = stage1().plan().unwrap();
        let m = llama3_8b();
        let (_, per_layer) = parameter_counts(&m);
        let matmuls = per_layer as f64 - 2.0 * 4096.0; // no norms
        let s = 65536.0f64;
        let attention = 12.0 * 4096.0 * s * (s + 1.0) / 2.0;
        let head = 6.0 * 4096.0 * 128256.0 * (s - 1.0);
        let per_seq = 32.0 * (6.0 * matmuls * s + attention) + head;
        let rel = (plan.step_model_flops - 64.0 * per_seq).abs() / plan.step_model_flops;
        assert!(rel < 1e-12, "{rel}");
        assert!(plan.step_hardware_flops > plan.step_model_flops);
        let no_recompute = PlanInput {
            recompute: false,
            ..stage1()
        };
        assert_eq!(
            no_recompute.plan().unwrap().step_hardware_flops,
            plan.step_model_flops
        );
    }

    #[test]
    fn impossible_layouts_are_errors() {
        let bad = |input: PlanInput| input.plan().unwrap_err();
        assert_eq!(
            bad(PlanInput { sp: 3, ..stage1() }),
            PlanError::SpWorld { sp: 3, world: 8 }
        );
        assert_eq!(
            bad(PlanInput {
                world: 64,
                sp: 64,
                ..stage1()
            }),
            PlanError::SpHeads { sp: 64, heads: 32 }
        );
        assert_eq!(
            bad(PlanInput {
                world: 0,
                ..stage1()
            }),
            PlanError::Zero("--gpus")
        );
    }
}
