//! Llama continual pre-training on packed MDS shards.
//!
//! Modules:
//! * [`config`] — HF `config.json` ([`LlamaConfig`]);
//! * [`PackedSequence`] — a packed sequence with documents and labels (from
//!   `prolong-packed`, the contract shared with the corpus stages);
//! * [`ops`] — differentiable ops, each with an explicit backward (the device seam);
//! * [`model`] — the Llama ([`Llama`]): forward, blocked loss, backward with layer
//!   recomputation;
//! * [`checkpoint`] — HF-layout safetensors load/save (single file or sharded);
//! * [`optim`] — AdamW (fp32 master weights and moments), clipping, LR schedule;
//! * [`plan`] — per-rank memory, FLOPs and traffic of a multi-device run;
//! * [`stage`] — stage recipes (TOML); [`train`] — the training loop, trainer
//!   checkpoints and exact resume; [`metrics`] — per-step records, loss SVG, FLOPs.

mod atomic;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dist;
pub mod error;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optim;
pub mod plan;
pub mod stage;
pub mod train;

pub use config::{Heads, LlamaConfig};
pub use error::{Error, Result};
pub use model::{LOSS_BLOCK_TOKENS, LayerParams, Llama, LlamaParams, LossOutput};
pub use prolong_packed::PackedSequence;
