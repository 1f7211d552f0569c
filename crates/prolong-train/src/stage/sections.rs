//! `[data]`, `[train]`, `[checkpoint]`, `[eval]` and `[device]`: what a stage reads,
//! how it steps, where it writes, what it holds out and what its MFU divides by.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// A mixture manifest (`[[stream]]` path + proportion).
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// Or the streams inline, as `"path@proportion"`.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// Tokens per packed sequence; must match the shards.
    pub seq_len: usize,
    /// Train only on the tokens the datasets' `mask` column marks (ProLong's
    /// `--apply_instruct_masks`: on for SFT, off for the long-context stages, whose
    /// released mixtures carry `mask` in their Tulu folder and must still train on
    /// every token). Off by default, as in ProLong.
    #[serde(default)]
    pub apply_mask: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Optimizer steps.
    pub steps: u64,
    /// Tokens per optimizer step: `seq_len × micro-batches` (gradient accumulation; one
    /// packed sequence per micro-batch).
    pub tokens_per_step: u64,
    pub peak_lr: f64,
    /// Warmup as a fraction of `steps`.
    pub warmup: f64,
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Weight decay on the RMSNorm weights too (default: no, HF Trainer's groups). ProLong
    /// decays them: HF Trainer (transformers 4.44) exempts only parameters of modules in
    /// `ALL_LAYERNORM_LAYERS` (`nn.LayerNorm`, plus transformers' own `LlamaRMSNorm`), and
    /// ProLong's training/modeling_flash_llama.py defines its own `LlamaRMSNorm`
    /// (an `nn.Module`, not in that list), while training/trainer.py keeps HF's
    /// `create_optimizer`; so the ProLong recipes set it.
    #[serde(default)]
    pub decay_norms: bool,
    /// Global gradient-norm clip (0 disables).
    #[serde(default = "default_clip")]
    pub clip: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_adam_eps")]
    pub eps: f64,
    /// Seed of the data order.
    pub seed: u64,
    /// Labeled tokens per cross-entropy block (ProLong's `LOGIT_BLOCK_SIZE`).
    #[serde(default = "default_loss_block")]
    pub loss_block: usize,
    /// How a step's loss averages its tokens: `"sequence"` (default; HF Trainer's rule,
    /// ProLong's pre-training) or `"token"` (ProLong's SFT `--token_scaled_loss`).
    #[serde(default)]
    pub loss_normalisation: LossNormalisation,
    /// CPU threads of the matmuls (the CLI sets RAYON_NUM_THREADS from it; default: the
    /// environment's, else all cores). Recorded in checkpoints: exact resume is guaranteed
    /// for the same count (candle's gemm also gave identical bits for 2 and 16 threads).
    #[serde(default)]
    pub threads: Option<usize>,
}

/// The loss of an optimizer step over its micro-batches (one packed sequence each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossNormalisation {
    /// The mean over the micro-batches of each one's token-mean loss (HF Trainer divides
    /// each micro-batch's mean by the accumulation steps).
    #[default]
    Sequence,
    /// The sum of the losses of every labelled token of the step, across micro-batches,
    /// divided by their count: a conversation with 2,000 answer tokens weighs 100× one
    /// with 20 (ProLong's `--token_scaled_loss`).
    Token,
}

fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_wd() -> f64 {
    0.1
}
fn default_clip() -> f64 {
    1.0
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_adam_eps() -> f64 {
    1e-8
}
fn default_loss_block() -> usize {
    crate::model::LOSS_BLOCK_TOKENS
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// Output directory: `checkpoints/step-NNNNNN/`, `final/`, `metrics.jsonl`,
    /// `loss.svg`.
    pub out: PathBuf,
    /// Checkpoint every this many optimizer steps (0: only at the end).
    #[serde(default)]
    pub every: u64,
    /// Keep only the newest this many periodic checkpoints (0: keep all).
    #[serde(default)]
    pub keep: usize,
    /// Largest weight shard, as transformers' `max_shard_size`: bytes, or a number with
    /// KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers of 1024). Default "5GB".
    #[serde(default)]
    pub max_shard_size: Option<String>,
}

impl CheckpointSection {
    /// `max_shard_size` in bytes (`None`: not a size).
    pub fn max_shard_bytes(&self) -> Option<u64> {
        match &self.max_shard_size {
            None => Some(crate::checkpoint::DEFAULT_MAX_SHARD_BYTES),
            Some(s) => parse_size(s),
        }
    }
}

/// `"5GB"` → 5·10⁹, `"512MiB"` → 512·2²⁰, `"1000"` → 1000; `None` for anything else
/// (or 0).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim().parse::<f64>().ok()?, t[split..].trim());
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * scale).round();
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Loss on held-out sequences, measured before the first step, every `every` steps and
/// after the last.
///
/// The sequences are held out of the training streams themselves: `sequences` is split
/// over the streams by the mixture's proportions (as the stage's sequences are), and
/// each stream's share is a seeded random choice of its samples that the loader then
/// never hands out for training. Same distribution as the training data, no separate
/// split to prepare, and disjoint from the training sequences by construction. The
/// choice depends on `seed` and the streams only, so consecutive stages over the same
/// streams (tiny-stage1 → tiny-stage2) hold out the same sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Packed sequences held out (each evaluated whole, forward only).
    pub sequences: u64,
    /// Evaluate every this many optimizer steps (0: only before the first and after
    /// the last).
    #[serde(default)]
    pub every: u64,
    /// Seed of the held-out choice.
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSection {
    /// Peak throughput of the device in TFLOP/s that MFU and HFU divide by (e.g. 989 for
    /// an H100 SXM in bf16).
    pub peak_tflops: Option<f64>,
    /// Or a GPU of the known table (`metrics::KNOWN_GPUS`: "H100", "H100-SXM", "H200",
    /// "A100"), whose bf16 peak is used. With neither, the peak of a large matmul in the
    /// compute dtype is measured before training.
    pub gpu: Option<String>,
    /// Where each rank trains: `auto` (default: `cuda:LOCAL_RANK` on a `cuda` build
    /// with GPUs, else the CPU), `cpu`, `cuda` or `cuda:N`; `--device` overrides it.
    pub kind: super::DeviceChoice,
}
