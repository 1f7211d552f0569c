//! Where a training pass gets each unit's weights and where it hands each unit's
//! gradient ([`Units`]), so that the weights can live elsewhere: resident in the model
//! (`Resident`), or sharded over the ranks and all-gathered one unit at a time just
//! before use, the gradient reduce-scattered as soon as backward produces it
//! (`shard = "full"`, `train/fsdp.rs`).
//!
//! The units are FSDP's: the embedding, each decoder layer, the final norm with the
//! output projection. [`super::loss_and_grads_units`] asks for a unit's weights right
//! before it uses them and [`Units::release`]s them right after, so a source that
//! gathers on demand holds one unit at a time (two at the head of a model with tied
//! embeddings, whose output projection is the embedding's weight).

use candle_core::Tensor;

use super::LlamaParams;
use super::params::{EMBED_TOKENS, LayerParams};
use crate::config::LlamaConfig;
use crate::error::{Error, Result};

/// Parameters of each unit of `cfg`, in pass order: the embedding, each decoder layer,
/// the final norm with the output projection (the norm alone when tied).
pub fn unit_sizes(cfg: &LlamaConfig) -> Vec<u64> {
    let layers = cfg.num_hidden_layers;
    let mut units = vec![0u64; layers + 2];
    for (name, shape) in cfg.param_shapes() {
        let layer = name
            .strip_prefix("model.layers.")
            .and_then(|rest| rest.split('.').next()?.parse::<usize>().ok());
        let u = match layer {
            _ if name == EMBED_TOKENS => 0,
            Some(l) => 1 + l,
            None => layers + 1,
        };
        units[u] += shape.iter().product::<usize>() as u64;
    }
    units
}

/// The most parameters a pass that gathers units on demand holds at once: the largest
/// unit, or at the head of a tied model the head with the embedding (module doc).
pub fn most_held(cfg: &LlamaConfig) -> u64 {
    let units = unit_sizes(cfg);
    let largest = units.iter().copied().max().unwrap_or(0);
    let head = units.last().copied().unwrap_or(0);
    if cfg.tie_word_embeddings {
        largest.max(head + units[0])
    } else {
        largest
    }
}

/// A unit of weights, as the pass asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Embed,
    Layer(usize),
    /// The final norm and the output projection (`embed_tokens` when tied).
    Head,
}

/// Weights by unit for one forward and backward pass, and the sink of its gradients.
/// The pass calls, in order: `embed`, `layer(0..L)` (each followed by its `release`),
/// `head`, `head_grads`, then from the last layer down `layer(i)` again (the
/// recomputation and backward) and `layer_grads(i)`, last `embed_grads`.
pub trait Units {
    type Error: From<Error> + From<candle_core::Error>;
    /// `embed_tokens [V, C]`.
    fn embed(&mut self) -> std::result::Result<&Tensor, Self::Error>;
    fn layer(&mut self, i: usize) -> std::result::Result<&LayerParams, Self::Error>;
    /// The final norm `[C]` and the output projection `[V, C]`.
    fn head(&mut self) -> std::result::Result<(&Tensor, &Tensor), Self::Error>;
    /// The pass is done with `unit`'s weights until it asks again.
    fn release(&mut self, unit: Unit);
    fn layer_grads(&mut self, i: usize, g: LayerParams) -> std::result::Result<(), Self::Error>;
    /// The final norm's gradient and, without tied embeddings, the output projection's
    /// (tied, the pass adds it to the embedding's gradient, as one tensor).
    fn head_grads(
        &mut self,
        d_norm: Tensor,
        d_lm_head: Option<Tensor>,
    ) -> std::result::Result<(), Self::Error>;
    fn embed_grads(&mut self, d: Tensor) -> std::result::Result<(), Self::Error>;
}

/// The model's own weights; the gradients are collected whole.
pub(crate) struct Resident<'a> {
    params: &'a LlamaParams,
    embed: Option<Tensor>,
    layers: Vec<Option<LayerParams>>,
    norm: Option<Tensor>,
    lm_head: Option<Tensor>,
}

impl<'a> Resident<'a> {
    pub fn new(params: &'a LlamaParams) -> Self {
        Self {
            params,
            embed: None,
            layers: vec![None; params.layers.len()],
            norm: None,
            lm_head: None,
        }
    }

    /// Every gradient the pass handed over, as a parameter set.
    pub fn into_grads(self) -> Result<LlamaParams> {
        let missing = |what: &str| Error::Config(format!("the pass gave no gradient of {what}"));
        Ok(LlamaParams {
            embed_tokens: self.embed.ok_or_else(|| missing("the embedding"))?,
            layers: self
                .layers
                .into_iter()
                .enumerate()
                .map(|(i, g)| g.ok_or_else(|| missing(&format!("layer {i}"))))
                .collect::<Result<_>>()?,
            norm: self.norm.ok_or_else(|| missing("the final norm"))?,
            lm_head: self.lm_head,
        })
    }
}

impl Units for Resident<'_> {
    type Error = Error;

    fn embed(&mut self) -> Result<&Tensor> {
        Ok(&self.params.embed_tokens)
    }

    fn layer(&mut self, i: usize) -> Result<&LayerParams> {
        self.params
            .layers
            .get(i)
            .ok_or_else(|| Error::Config(format!("no layer {i}")))
    }

    fn head(&mut self) -> Result<(&Tensor, &Tensor)> {
        Ok((&self.params.norm, self.params.output_weight()))
    }

    fn release(&mut self, _: Unit) {}

    fn layer_grads(&mut self, i: usize, g: LayerParams) -> Result<()> {
        let slot = self
            .layers
            .get_mut(i)
            .ok_or_else(|| Error::Config(format!("no layer {i}")))?;
        *slot = Some(g);
        Ok(())
    }

    fn head_grads(&mut self, d_norm: Tensor, d_lm_head: Option<Tensor>) -> Result<()> {
        (self.norm, self.lm_head) = (Some(d_norm), d_lm_head);
        Ok(())
    }

    fn embed_grads(&mut self, d: Tensor) -> Result<()> {
        self.embed = Some(d);
        Ok(())
    }
}
