//! Parameter sets (weights, and gradients of the same shapes), with HF names.
//!
//! The tensors of a decoder layer are listed once, in `layer_tensors!`: field, HF name
//! and shape. The [`LayerParams`] struct, its tensors in checkpoint order, its construction
//! from named tensors and the shapes a config expects ([`LlamaConfig::param_shapes`]) are
//! all generated from that list, so adding a tensor (an attention bias, a q/k norm) is one
//! line there plus its use in model/layer.rs.

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::{Error, Result};

/// HF name of the token embeddings.
pub const EMBED_TOKENS: &str = "model.embed_tokens.weight";
/// HF name of the final RMSNorm weight.
pub const FINAL_NORM: &str = "model.norm.weight";
/// HF name of the output projection (absent with tied embeddings).
pub const LM_HEAD: &str = "lm_head.weight";

/// HF name of tensor `suffix` (a [`LayerParams`] name) of decoder layer `layer`.
pub fn layer_tensor_name(layer: usize, suffix: &str) -> String {
    format!("model.layers.{layer}.{suffix}")
}

/// The widths a layer tensor's shape is made of: `c` hidden, `f` FFN, `q` query
/// (`H·D`), `kv` key/value (`KV·D`).
struct Dims {
    c: usize,
    f: usize,
    q: usize,
    kv: usize,
}

impl Dims {
    fn of(config: &LlamaConfig) -> Self {
        Self {
            c: config.hidden_size,
            f: config.intermediate_size,
            q: config.q_dim(),
            kv: config.kv_dim(),
        }
    }
}

/// A field of a generated layer struct: a `Tensor` every layer has, or an
/// `Option<Tensor>` that a config switch turns on (`field: ... if switch`).
trait Slot: Sized {
    fn get(&self) -> Option<&Tensor>;
    fn get_mut(&mut self) -> Option<&mut Tensor>;
    /// The field's value: `take()` when the tensor is present in this config.
    fn fill(present: bool, take: impl FnOnce() -> Result<Tensor>) -> Result<Self>;
}

impl Slot for Tensor {
    fn get(&self) -> Option<&Tensor> {
        Some(self)
    }
    fn get_mut(&mut self) -> Option<&mut Tensor> {
        Some(self)
    }
    fn fill(_always: bool, take: impl FnOnce() -> Result<Tensor>) -> Result<Self> {
        take()
    }
}

impl Slot for Option<Tensor> {
    fn get(&self) -> Option<&Tensor> {
        self.as_ref()
    }
    fn get_mut(&mut self) -> Option<&mut Tensor> {
        self.as_mut()
    }
    fn fill(present: bool, take: impl FnOnce() -> Result<Tensor>) -> Result<Self> {
        present.then(take).transpose()
    }
}

/// `Tensor` for a tensor every layer has, `Option<Tensor>` for one behind a config switch.
macro_rules! slot_type {
    () => { Tensor };
    ($switch:ident) => { Option<Tensor> };
}

/// Defines a decoder layer's parameter struct from its one list of tensors:
/// `field: "HF suffix" [shape in Dims widths]`, and `if switch` (a `bool` of
/// [`LlamaConfig`]) after a tensor only some configs have, which makes the field an
/// `Option<Tensor>`. The order of the list is the checkpoint order.
macro_rules! layer_tensors {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($field:ident: $hf:literal [$($dim:ident),+] $(if $switch:ident)?,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(pub $field: slot_type!($($switch)?),)+
        }

        impl $name {
            /// `(HF suffix, shape)` of every tensor a layer of `config` has, in
            /// checkpoint order.
            pub fn shapes(config: &LlamaConfig) -> Vec<(&'static str, Vec<usize>)> {
                let d = Dims::of(config);
                let mut out = Vec::new();
                $(if true $(&& config.$switch)? {
                    out.push(($hf, vec![$(d.$dim),+]));
                })+
                out
            }

            /// `(HF suffix, tensor)` of every tensor present, in checkpoint order.
            pub fn tensors(&self) -> Vec<(&'static str, &Tensor)> {
                let mut out = Vec::new();
                $(if let Some(t) = Slot::get(&self.$field) {
                    out.push(($hf, t));
                })+
                out
            }

            /// Like [`tensors`](Self::tensors), mutably.
            pub fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
                let mut out = Vec::new();
                $(if let Some(t) = Slot::get_mut(&mut self.$field) {
                    out.push(($hf, t));
                })+
                out
            }

            /// Builds a layer of `config` with `take(HF suffix, shape)` for every tensor
            /// it has, in checkpoint order.
            pub(crate) fn from_fn(
                config: &LlamaConfig,
                mut take: impl FnMut(&'static str, Vec<usize>) -> Result<Tensor>,
            ) -> Result<Self> {
                let d = Dims::of(config);
                Ok(Self {
                    $($field: Slot::fill(true $(&& config.$switch)?, || {
                        take($hf, vec![$(d.$dim),+])
                    })?,)+
                })
            }
        }
    };
}

layer_tensors! {
    /// One decoder layer. Projection weights are `[out, in]` as in HF.
    pub struct LayerParams {
        input_layernorm: "input_layernorm.weight" [c],
        q_proj: "self_attn.q_proj.weight" [q, c],
        k_proj: "self_attn.k_proj.weight" [kv, c],
        v_proj: "self_attn.v_proj.weight" [kv, c],
        o_proj: "self_attn.o_proj.weight" [c, q],
        post_attention_layernorm: "post_attention_layernorm.weight" [c],
        gate_proj: "mlp.gate_proj.weight" [f, c],
        up_proj: "mlp.up_proj.weight" [f, c],
        down_proj: "mlp.down_proj.weight" [c, f],
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

/// The error for tensor `name` when its shape is not `expected`.
pub(crate) fn check_shape(name: &str, t: &Tensor, expected: &[usize]) -> Result<()> {
    if t.dims() == expected {
        return Ok(());
    }
    Err(Error::TensorShape {
        name: name.into(),
        expected: expected.to_vec(),
        actual: t.dims().to_vec(),
    })
}

impl LlamaConfig {
    /// Every parameter of the model, by HF name, with its shape, in checkpoint order.
    /// With tied embeddings there is no `lm_head.weight`. (Defined beside the parameter
    /// list it is made from.)
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (c, v) = (self.hidden_size, self.vocab_size);
        let mut out = vec![(EMBED_TOKENS.to_string(), vec![v, c])];
        for l in 0..self.num_hidden_layers {
            for (suffix, shape) in LayerParams::shapes(self) {
                out.push((layer_tensor_name(l, suffix), shape));
            }
        }
        out.push((FINAL_NORM.into(), vec![c]));
        if !self.tie_word_embeddings {
            out.push((LM_HEAD.into(), vec![v, c]));
        }
        out
    }
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
        let mut take = |name: String, shape: &[usize]| -> Result<Tensor> {
            let t = get(&name).ok_or_else(|| Error::MissingTensor { name: name.clone() })?;
            check_shape(&name, &t, shape)?;
            Ok(t.to_dtype(dtype)?.to_device(device)?)
        };
        let (c, v) = (config.hidden_size, config.vocab_size);
        let embed_tokens = take(EMBED_TOKENS.into(), &[v, c])?;
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                LayerParams::from_fn(config, |suffix, shape| {
                    take(layer_tensor_name(l, suffix), &shape)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = take(FINAL_NORM.into(), &[c])?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(take(LM_HEAD.into(), &[v, c])?)
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
        })
    }

    /// `(HF name, tensor)` for every parameter, in checkpoint order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out = vec![(EMBED_TOKENS.to_string(), &self.embed_tokens)];
        for (l, layer) in self.layers.iter().enumerate() {
            for (suffix, t) in layer.tensors() {
                out.push((layer_tensor_name(l, suffix), t));
            }
        }
        out.push((FINAL_NORM.into(), &self.norm));
        if let Some(h) = &self.lm_head {
            out.push((LM_HEAD.into(), h));
        }
        out
    }

    /// Like [`named`](Self::named), mutably (for optimizers).
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = vec![(EMBED_TOKENS.to_string(), &mut self.embed_tokens)];
        for (l, layer) in self.layers.iter_mut().enumerate() {
            for (suffix, t) in layer.tensors_mut() {
                out.push((layer_tensor_name(l, suffix), t));
            }
        }
        out.push((FINAL_NORM.into(), &mut self.norm));
        if let Some(h) = &mut self.lm_head {
            out.push((LM_HEAD.into(), h));
        }
        out
    }

    /// The output projection `[V, C]`: `lm_head`, or `embed_tokens` when tied.
    pub fn output_weight(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    layer_tensors! {
        /// A layer with attention biases (as Qwen2 has), to show an optional tensor fits.
        pub struct BiasedLayer {
            q_proj: "self_attn.q_proj.weight" [q, c],
            q_bias: "self_attn.q_proj.bias" [q] if attention_bias,
        }
    }

    fn config(attention_bias: bool) -> LlamaConfig {
        let mut c = LlamaConfig::from_json(
            r#"{"vocab_size": 8, "hidden_size": 4, "intermediate_size": 6,
                "num_hidden_layers": 1, "num_attention_heads": 2}"#,
        )
        .unwrap();
        c.attention_bias = attention_bias; // validate() would refuse it; the list must not
        c
    }

    #[test]
    fn an_optional_tensor_is_listed_and_loaded_only_when_its_switch_is_on() {
        let zeros = |s: Vec<usize>| Tensor::zeros(s, DType::F32, &Device::Cpu);
        for on in [false, true] {
            let cfg = config(on);
            let shapes = BiasedLayer::shapes(&cfg);
            let mut asked = Vec::new();
            let mut layer = BiasedLayer::from_fn(&cfg, |name, shape| {
                asked.push(name);
                Ok(zeros(shape)?)
            })
            .unwrap();
            let names: Vec<_> = layer.tensors().into_iter().map(|(n, _)| n).collect();
            let listed: Vec<_> = shapes.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, listed);
            assert_eq!(asked, listed);
            let names_mut: Vec<_> = layer.tensors_mut().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names_mut, listed);
            assert_eq!(layer.q_bias.is_some(), on);
            if on {
                assert_eq!(shapes[1], ("self_attn.q_proj.bias", vec![4]));
            } else {
                assert_eq!(shapes.len(), 1);
            }
        }
    }
}
