//! `[model]`: where the weights come from (an HF checkpoint or a random init) and the
//! compute dtype.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{LlamaConfig, default_eps};

/// Every key may be left out: each field's default is its type's (no weights, f32).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// An HF checkpoint directory (`config.json` + safetensors), e.g. a previous stage's
    /// `final/`.
    pub init: Option<PathBuf>,
    /// A random model instead of `init`.
    pub random: Option<RandomInit>,
    /// Overrides the RoPE base of the model's config.
    pub rope_theta: Option<f64>,
    /// Start from the Adam moments (and Adam step count) stored beside the weights in
    /// `init` (a stage checkpoint). The trainer's step counter and schedule start afresh.
    pub keep_optimizer: bool,
    /// Compute dtype of the model: "f32" (default) or "bf16". Master weights and Adam
    /// state are always fp32.
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
    /// Default: HF `LlamaConfig`'s (see `default_eps`); Llama-3 uses 1e-5.
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
