//! Stage recipes: the TOML file that describes one training stage (`pipelines/*.toml`).
//!
//! ```toml
//! [model]
//! init = "models/Meta-Llama-3-8B-Instruct"   # HF checkpoint dir (or a stage's final/)
//! # [model.random] seed = 0, layers = 2, hidden = 128, ...   (instead of `init`)
//! rope_theta = 8e6                            # overrides config.json's rope_theta
//! keep_optimizer = false                      # also load Adam moments from `init`
//! dtype = "bf16"                              # compute dtype: "f32" or "bf16"
//!
//! [data]
//! manifest = "data/mix/stage1-64k.toml"       # or: streams = ["path@0.3", ...]
//! seq_len = 65536
//! apply_mask = false                          # train only where `mask` = 1 (SFT: true)
//!
//! [train]
//! steps = 5000
//! tokens_per_step = 4194304                   # a multiple of seq_len
//! peak_lr = 1e-5
//! warmup = 0.1                                # fraction of steps
//! seed = 42
//! decay_norms = true                          # weight decay on RMSNorm weights (ProLong)
//! loss_normalisation = "sequence"             # or "token" (SFT)
//!
//! [checkpoint]
//! out = "runs/stage1-64k"
//! every = 500
//! max_shard_size = "5GB"                      # weight shards, as transformers'
//!
//! [eval]                                      # optional: held-out loss
//! sequences = 32                              # held out of the training streams
//! every = 250                                 # steps (0: only before and after)
//!
//! [device]                                    # the peak MFU divides by
//! peak_tflops = 989                           # or: gpu = "H100"; or measured (CPU)
//! kind = "auto"                               # or "cpu", "cuda", "cuda:N" (train/device.rs)
//!
//! [parallel]                                  # how ranks split the work (parallel.rs)
//! shard = "full"                              # "none" (DDP) | "grad_op" | "full"
//! sequence = 8                                # Ulysses SP ranks per sequence (ProLong's --seq_parallel_size)
//! ```
//!
//! Every table rejects unknown keys. Relative paths are relative to the working
//! directory. [`StageConfig::load`] parses and checks everything that can be checked
//! without reading the data (that check happens when the loader opens the shards).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{LlamaConfig, default_eps};

mod parallel;
pub use parallel::{ParallelSection, ShardMode};

/// A recipe that cannot be used, with a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: String,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

/// One training stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Shown in the progress bar and the summary.
    #[serde(default)]
    pub name: Option<String>,
    pub model: ModelSection,
    pub data: DataSection,
    pub train: TrainSection,
    pub checkpoint: CheckpointSection,
    /// Held-out evaluation (none when absent).
    #[serde(default)]
    pub eval: Option<EvalSection>,
    #[serde(default)]
    pub device: DeviceSection,
    #[serde(default)]
    pub parallel: ParallelSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// An HF checkpoint directory (`config.json` + safetensors), e.g. a previous stage's
    /// `final/`.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// A random model instead of `init`.
    #[serde(default)]
    pub random: Option<RandomInit>,
    /// Overrides the RoPE base of the model's config.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Start from the Adam moments (and Adam step count) stored beside the weights in
    /// `init` (a stage checkpoint). The trainer's step counter and schedule start afresh.
    #[serde(default)]
    pub keep_optimizer: bool,
    /// Compute dtype of the model: "f32" (default) or "bf16". Master weights and Adam
    /// state are always fp32.
    #[serde(default)]
    pub dtype: ComputeDtype,
}

/// The model's compute dtype (`[model] dtype`), written `"f32"` or `"bf16"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    #[default]
    F32,
    Bf16,
}

impl ComputeDtype {
    /// Bytes of one element.
    pub fn bytes(self) -> usize {
        match self {
            ComputeDtype::F32 => 4,
            ComputeDtype::Bf16 => 2,
        }
    }

    pub fn candle(self) -> candle_core::DType {
        match self {
            Self::F32 => candle_core::DType::F32,
            Self::Bf16 => candle_core::DType::BF16,
        }
    }
}

/// A randomly initialised Llama (HF initialisation: normal(0, `init_std`) for every
/// matrix, ones for the norms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomInit {
    pub seed: u64,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    #[serde(default)]
    pub tied: bool,
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Default: HF `LlamaConfig`'s (see [`default_eps`]); Llama-3 uses 1e-5.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_std")]
    pub init_std: f64,
}

fn default_theta() -> f64 {
    500_000.0
}
fn default_std() -> f64 {
    0.02
}

impl RandomInit {
    /// The HF config of this model.
    pub fn llama_config(&self) -> LlamaConfig {
        let mut extra = serde_json::Map::new();
        extra.insert("model_type".into(), "llama".into());
        extra.insert(
            "architectures".into(),
            serde_json::json!(["LlamaForCausalLM"]),
        );
        extra.insert("initializer_range".into(), self.init_std.into());
        extra.insert("torch_dtype".into(), "float32".into());
        LlamaConfig {
            vocab_size: self.vocab,
            hidden_size: self.hidden,
            intermediate_size: self.ffn,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            num_key_value_heads: Some(self.kv_heads),
            head_dim: self.head_dim,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta: self.rope_theta,
            tie_word_embeddings: self.tied,
            hidden_act: "silu".into(),
            attention_bias: false,
            mlp_bias: false,
            rope_scaling: None,
            extra,
        }
    }
}

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
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// Peak throughput of the device in TFLOP/s that MFU and HFU divide by (e.g. 989 for
    /// an H100 SXM in bf16).
    #[serde(default)]
    pub peak_tflops: Option<f64>,
    /// Or a GPU of the known table (`metrics::KNOWN_GPUS`: "H100", "H100-SXM", "H200",
    /// "A100"), whose bf16 peak is used. With neither, the peak of a large matmul in the
    /// compute dtype is measured before training.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Where each rank trains: `auto` (default: `cuda:LOCAL_RANK` on a `cuda` build
    /// with GPUs, else the CPU), `cpu`, `cuda` or `cuda:N`; `--device` overrides it.
    #[serde(default)]
    pub kind: crate::train::device::DeviceChoice,
}

impl StageConfig {
    /// Reads, parses and checks a recipe.
    pub fn load(path: &Path) -> Result<Self, StageError> {
        let text = std::fs::read_to_string(path).map_err(|source| StageError::Io {
            path: path.into(),
            err: source,
        })?;
        let cfg = Self::parse(&text, path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses a recipe (no checks); `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, StageError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| {
                    format!(
                        ":{}",
                        text.as_bytes()[..s.start.min(text.len())]
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count()
                            + 1
                    )
                })
                .unwrap_or_default();
            StageError::Parse {
                path: path.into(),
                line,
                msg: e.message().replace('\n', " ").trim().to_string(),
            }
        })
    }

    /// Micro-batches (packed sequences) per optimizer step.
    pub fn micro_batches(&self) -> u64 {
        self.train.tokens_per_step / self.data.seq_len.max(1) as u64
    }

    /// The model config this stage trains: the random init's, or `init/config.json`'s,
    /// with the RoPE override applied and validated.
    pub fn llama_config(&self, path: &Path) -> Result<LlamaConfig, StageError> {
        let invalid = |msg: String| StageError::Invalid {
            path: path.into(),
            msg,
        };
        let mut cfg = match (&self.model.init, &self.model.random) {
            (Some(dir), None) => LlamaConfig::load(dir.join(crate::checkpoint::CONFIG_FILE))
                .map_err(|e| invalid(format!("model.init: {e}")))?,
            (None, Some(r)) => r.llama_config(),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "[model] has both `init` and `random`; give one".into(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "[model] needs `init = \"DIR\"` (an HF checkpoint) or a [model.random] table"
                        .into(),
                ));
            }
        };
        if let Some(theta) = self.model.rope_theta {
            cfg.rope_theta = theta;
        }
        cfg.validate().map_err(|e| {
            invalid(match (&self.model.random, e) {
                (Some(_), crate::Error::Config(m)) => format!("[model.random]: {m}"),
                (_, e) => format!("model: {e}"),
            })
        })?;
        Ok(cfg)
    }

    /// Checks everything that does not need the data.
    pub fn validate(&self, path: &Path) -> Result<(), StageError> {
        let invalid = |msg: String| {
            Err(StageError::Invalid {
                path: path.into(),
                msg,
            })
        };
        self.llama_config(path)?;
        if self.model.keep_optimizer && self.model.init.is_none() {
            return invalid("model.keep_optimizer needs model.init (a stage checkpoint)".into());
        }
        let d = &self.data;
        match (&d.manifest, &d.streams) {
            (Some(_), Some(_)) => {
                return invalid("[data] has both `manifest` and `streams`".into());
            }
            (None, None) => {
                return invalid(
                    "[data] needs `manifest = \"FILE\"` or `streams = [\"path@p\", ...]`".into(),
                );
            }
            (None, Some(s)) if s.is_empty() => return invalid("data.streams is empty".into()),
            _ => {}
        }
        if d.seq_len == 0 {
            return invalid("data.seq_len must be positive".into());
        }
        let t = &self.train;
        if t.steps == 0 {
            return invalid("train.steps must be positive".into());
        }
        if t.tokens_per_step == 0 || t.tokens_per_step % d.seq_len as u64 != 0 {
            return invalid(format!(
                "train.tokens_per_step ({}) must be a positive multiple of data.seq_len ({})",
                t.tokens_per_step, d.seq_len
            ));
        }
        if !(t.peak_lr.is_finite() && t.peak_lr > 0.0) {
            return invalid(format!("train.peak_lr ({}) must be positive", t.peak_lr));
        }
        for (name, v) in [
            ("train.warmup", t.warmup),
            ("train.min_lr_ratio", t.min_lr_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return invalid(format!("{name} ({v}) must be within [0, 1]"));
            }
        }
        for (name, v) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return invalid(format!("{name} ({v}) must be within [0, 1)"));
            }
        }
        if !(t.eps > 0.0 && t.weight_decay >= 0.0 && t.clip >= 0.0) {
            return invalid("train.eps must be positive, weight_decay and clip ≥ 0".into());
        }
        if t.loss_block == 0 {
            return invalid("train.loss_block must be positive".into());
        }
        if t.threads == Some(0) {
            return invalid("train.threads must be positive".into());
        }
        if self.checkpoint.max_shard_bytes().is_none() {
            return invalid(format!(
                "checkpoint.max_shard_size `{}` is not a size (e.g. \"5GB\", \"500MB\", \"2GiB\", bytes)",
                self.checkpoint
                    .max_shard_size
                    .as_deref()
                    .unwrap_or_default()
            ));
        }
        if let Some(e) = &self.eval
            && e.sequences == 0
        {
            return invalid("eval.sequences must be positive (or leave out [eval])".into());
        }
        let sp = self.parallel.sequence;
        if sp == 0 || d.seq_len % sp != 0 {
            return invalid(format!(
                "parallel.sequence ({sp}) must be positive and divide data.seq_len ({})",
                d.seq_len
            ));
        }
        if sp > 1 {
            let c = self.llama_config(path)?;
            let heads = crate::ops::attention::Heads {
                n_head: c.num_attention_heads,
                n_kv_head: c.n_kv_heads(),
                head_dim: c.head_dim(),
            };
            if let Err(e) = crate::dist::ulysses::Ulysses::new(sp, heads, d.seq_len) {
                return invalid(format!("parallel.sequence = {sp}: {e}"));
            }
        }
        if let Some(p) = self.device.peak_tflops
            && !(p.is_finite() && p > 0.0)
        {
            return invalid(format!("device.peak_tflops ({p}) must be positive"));
        }
        if let Some(g) = &self.device.gpu
            && crate::metrics::known_gpu_peak(g).is_none()
        {
            let known: Vec<&str> = crate::metrics::KNOWN_GPUS.iter().map(|k| k.0).collect();
            return invalid(format!(
                "device.gpu {g:?} is not a known GPU ({}); give device.peak_tflops instead",
                known.join(", ")
            ));
        }
        Ok(())
    }
}
