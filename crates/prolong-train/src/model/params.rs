//! Parameter sets (weights, and gradients of the same shapes), with HF names.

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::{Error, Result};

/// HF suffixes of one decoder layer's tensors, in [`LayerParams::tensors`] order.
pub const LAYER_NAMES: [&str; 9] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

/// One decoder layer. Projection weights are `[out, in]` as in HF.
#[derive(Debug, Clone)]
pub struct LayerParams {
    pub input_layernorm: Tensor,
    pub q_proj: Tensor,
    pub k_proj: Tensor,
    pub v_proj: Tensor,
    pub o_proj: Tensor,
    pub post_attention_layernorm: Tensor,
    pub gate_proj: Tensor,
    pub up_proj: Tensor,
    pub down_proj: Tensor,
}

impl LayerParams {
    /// The tensors in [`LAYER_NAMES`] order.
    pub fn tensors(&self) -> [&Tensor; 9] {
        [
            &self.input_layernorm,
            &self.q_proj,
            &self.k_proj,
            &self.v_proj,
            &self.o_proj,
            &self.post_attention_layernorm,
            &self.gate_proj,
            &self.up_proj,
            &self.down_proj,
        ]
    }

    /// The tensors in [`LAYER_NAMES`] order, mutably.
    pub fn tensors_mut(&mut self) -> [&mut Tensor; 9] {
        [
            &mut self.input_layernorm,
            &mut self.q_proj,
            &mut self.k_proj,
            &mut self.v_proj,
            &mut self.o_proj,
            &mut self.post_attention_layernorm,
            &mut self.gate_proj,
            &mut self.up_proj,
            &mut self.down_proj,
        ]
    }

    fn from_iter(it: &mut impl Iterator<Item = Tensor>) -> Option<Self> {
        Some(Self {
            input_layernorm: it.next()?,
            q_proj: it.next()?,
            k_proj: it.next()?,
            v_proj: it.next()?,
            o_proj: it.next()?,
            post_attention_layernorm: it.next()?,
            gate_proj: it.next()?,
            up_proj: it.next()?,
            down_proj: it.next()?,
        })
    }
}

/// All parameters of a Llama (or their gradients). `lm_head` is `None` with tied
/// embeddings: the output projection is then `embed_tokens`.
#[derive(Debug, Clone)]
pub struct LlamaParams {
    pub embed_tokens: Tensor,
    pub layers: Vec<LayerParams>,
    pub norm: Tensor,
    pub lm_head: Option<Tensor>,
}

impl LlamaParams {
    /// Builds the parameter set of `config` from tensors looked up by HF name; a missing or
    /// mis-shaped tensor is an error naming it. Tensors are converted to `dtype`/`device`.
    pub fn from_named(
        config: &LlamaConfig,
        mut get: impl FnMut(&str) -> Option<Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut all = Vec::new();
        for (name, shape) in config.param_shapes() {
            let t = get(&name).ok_or_else(|| Error::MissingTensor { name: name.clone() })?;
            if t.dims() != shape.as_slice() {
                return Err(Error::TensorShape {
                    name,
                    expected: shape,
                    actual: t.dims().to_vec(),
                });
            }
            all.push(t.to_dtype(dtype)?.to_device(device)?);
        }
        let n_layers = config.num_hidden_layers;
        let mut it = all.into_iter();
        let missing = || Error::Config("parameter list shorter than the config".into());
        let embed_tokens = it.next().ok_or_else(missing)?;
        let layers = (0..n_layers)
            .map(|_| LayerParams::from_iter(&mut it).ok_or_else(missing))
            .collect::<Result<Vec<_>>>()?;
        let norm = it.next().ok_or_else(missing)?;
        let lm_head = it.next();
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
        })
    }

    /// `(HF name, tensor)` for every parameter, in checkpoint order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), &self.embed_tokens)];
        for (l, layer) in self.layers.iter().enumerate() {
            for (n, t) in LAYER_NAMES.iter().zip(layer.tensors()) {
                out.push((format!("model.layers.{l}.{n}"), t));
            }
        }
        out.push(("model.norm.weight".into(), &self.norm));
        if let Some(h) = &self.lm_head {
            out.push(("lm_head.weight".into(), h));
        }
        out
    }

    /// Like [`named`](Self::named), mutably (for optimizers).
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            &mut self.embed_tokens,
        )];
        for (l, layer) in self.layers.iter_mut().enumerate() {
            for (n, t) in LAYER_NAMES.iter().zip(layer.tensors_mut()) {
                out.push((format!("model.layers.{l}.{n}"), t));
            }
        }
        out.push(("model.norm.weight".into(), &mut self.norm));
        if let Some(h) = &mut self.lm_head {
            out.push(("lm_head.weight".into(), h));
        }
        out
    }

    /// The output projection `[V, C]`: `lm_head`, or `embed_tokens` when tied.
    pub fn output_weight(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}
