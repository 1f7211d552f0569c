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

use crate::config::LlamaConfig;

mod device;
mod model;
mod parallel;
mod sections;
pub use device::DeviceChoice;
pub use model::{ComputeDtype, ModelSection, RandomInit};
pub use parallel::{ParallelSection, ShardMode};
pub use sections::{
    CheckpointSection, DataSection, DeviceSection, EvalSection, LossNormalisation, TrainSection,
    parse_size,
};

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
