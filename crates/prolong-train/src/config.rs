//! The Llama configuration, read from (and written back to) HF `config.json`.

use std::ops::Range;
use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Head layout of the attention inputs: `H` query heads, `KV` key/value heads (`KV`
/// divides `H`), each `D` wide. Here, below the ops, so that the ops (CPU and CUDA) and the
/// distributed splits share it without depending on each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
}

impl Heads {
    /// Query heads per kv head (`G = H / KV`).
    pub(crate) fn group(&self) -> usize {
        self.n_head / self.n_kv_head
    }
    /// The softmax scale `1/√D`.
    pub(crate) fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
    /// Whether the layout can be attended over: some kv heads, each shared by a whole
    /// number of query heads, and heads of some width.
    pub(crate) fn is_valid(&self) -> bool {
        self.n_kv_head > 0 && self.n_head % self.n_kv_head == 0 && self.head_dim > 0
    }
}

/// What one attention reads, forward and backward alike: the projections after RoPE
/// `q [T, H·D]`, `k, v [T, KV·D]`, their head layout, and the documents `segments`
/// tiling `[0, T)`. Here beside [`Heads`] for the same reason: the CPU ops and the CUDA
/// kernels' launchers both take it (`ops::attention` re-exports it).
#[derive(Debug, Clone, Copy)]
pub struct AttentionInputs<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    pub heads: &'a Heads,
    pub segments: &'a [Range<usize>],
}

impl<'a> AttentionInputs<'a> {
    pub fn new(
        q: &'a Tensor,
        k: &'a Tensor,
        v: &'a Tensor,
        heads: &'a Heads,
        segments: &'a [Range<usize>],
    ) -> Self {
        Self {
            q,
            k,
            v,
            heads,
            segments,
        }
    }
}

/// The fields of HF `LlamaConfig` the model uses. Every other key of config.json is kept in
/// `extra` and written back unchanged by [`LlamaConfig::save`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Defaults to `num_attention_heads` (plain multi-head attention), as in HF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`, as in HF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Unknown keys of config.json, kept for round trips.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// HF `LlamaConfig`'s default `rms_norm_eps` (Llama-3 checkpoints set 1e-5 explicitly).
/// The one default for a missing eps, in config.json and in a recipe's `[model.random]`.
pub(crate) fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_act() -> String {
    "silu".into()
}

impl LlamaConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            err: source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Json { err: source, .. } => Error::Json {
                path: path.into(),
                err: source,
            },
            e => e,
        })
    }

    /// Parses and validates a config.json text.
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(text).map_err(|source| Error::Json {
            path: "config.json".into(),
            err: source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Writes config.json whole ([`prolong_mds::write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: path.into(),
            err: source,
        })?;
        crate::atomic::write_atomic(path, text.as_bytes())
    }

    /// The head layout of the attention inputs.
    pub fn heads(&self) -> Heads {
        Heads {
            n_head: self.num_attention_heads,
            n_kv_head: self.n_kv_heads(),
            head_dim: self.head_dim(),
        }
    }

    pub fn n_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Width of the query projection output (`num_attention_heads * head_dim`).
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim()
    }

    /// Width of the key/value projection outputs (`num_key_value_heads * head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads() * self.head_dim()
    }

    /// Checks the config describes a model this crate implements.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.n_kv_heads()),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.head_dim.is_none() && self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "num_attention_heads ({}) does not divide hidden_size ({})",
                self.num_attention_heads, self.hidden_size
            ));
        }
        let hd = self.head_dim();
        if hd == 0 || hd % 2 != 0 {
            return bad(format!(
                "head_dim ({hd}) must be positive and even for RoPE"
            ));
        }
        if self.num_attention_heads % self.n_kv_heads() != 0 {
            return bad(format!(
                "num_key_value_heads ({}) does not divide num_attention_heads ({})",
                self.n_kv_heads(),
                self.num_attention_heads
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!(
                "rms_norm_eps ({}) must be positive",
                self.rms_norm_eps
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!("rope_theta ({}) must be > 1", self.rope_theta));
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act `{}` is not supported (silu only)",
                self.hidden_act
            ));
        }
        if self.attention_bias || self.mlp_bias {
            return bad("attention_bias / mlp_bias are not supported".into());
        }
        if matches!(&self.rope_scaling, Some(v) if !v.is_null()) {
            return bad("rope_scaling is not supported (only plain RoPE with rope_theta)".into());
        }
        Ok(())
    }
}
