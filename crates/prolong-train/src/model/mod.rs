//! The Llama model: forward, loss, and the backward pass with layer recomputation.
//!
//! Training step (llm.c style, explicit backward):
//! 1. forward through the layers, keeping only each layer's input `[T, C]`;
//! 2. final RMSNorm, then output projection + cross-entropy in blocks of
//!    [`LOSS_BLOCK_TOKENS`] labeled tokens, producing `dh` and `d lm_head` block by block;
//! 3. for each layer from the last: recompute its forward from the saved input, run the
//!    explicit backward of each op;
//! 4. embedding backward (plus the output projection's gradient when tied).
//!
//! Peak activation memory: `(layers + 1)·T·C` saved inputs plus one layer's activations.

pub mod decode;
mod eval;
mod head;
mod layer;
pub mod params;
mod sp;
pub mod units;

use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::dist::ulysses::{SeqGroup, Ulysses};
use crate::error::{Error, Result};
use crate::ops::{embedding, linear, rmsnorm};
use layer::Ctx;
pub use params::{LayerParams, LlamaParams};
use prolong_packed::PackedSequence;
use sp::SpAttention;
use units::{Resident, Unit, Units};

/// Labeled tokens per cross-entropy block (ProLong: 2,048).
pub const LOSS_BLOCK_TOKENS: usize = 2048;

/// Token-mean cross-entropy of one packed sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOutput {
    /// `loss_sum / label_tokens`; 0 when there are no labels.
    pub loss: f64,
    /// Sum of the per-token losses.
    pub loss_sum: f64,
    /// Number of label tokens.
    pub label_tokens: usize,
}

/// A Llama decoder with its parameters.
#[derive(Debug, Clone)]
pub struct Llama {
    config: LlamaConfig,
    params: LlamaParams,
}

impl Llama {
    /// Checks the config and that every parameter has the shape the config asks for, and
    /// that all parameters share one dtype and device.
    pub fn new(config: LlamaConfig, params: LlamaParams) -> Result<Self> {
        config.validate()?;
        if config.tie_word_embeddings != params.lm_head.is_none() {
            return Err(Error::Config(format!(
                "tie_word_embeddings is {} but lm_head is {}",
                config.tie_word_embeddings,
                if params.lm_head.is_some() {
                    "present"
                } else {
                    "absent"
                }
            )));
        }
        let expected = config.param_shapes();
        let named = params.named();
        if named.len() != expected.len() {
            return Err(Error::Config(format!(
                "{} parameter tensors for a config with {}",
                named.len(),
                expected.len()
            )));
        }
        let (dtype, device) = (params.embed_tokens.dtype(), params.embed_tokens.device());
        for ((name, t), (_, shape)) in named.iter().zip(&expected) {
            params::check_shape(name, t, shape)?;
            if t.dtype() != dtype || !t.device().same_device(device) {
                return Err(Error::Config(format!(
                    "tensor `{name}` is {:?} on {:?}, embeddings are {dtype:?} on {device:?}",
                    t.dtype(),
                    t.device()
                )));
            }
        }
        Ok(Self { config, params })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn params(&self) -> &LlamaParams {
        &self.params
    }

    /// Mutable parameters (for an optimizer step; shapes must not change).
    pub fn params_mut(&mut self) -> &mut LlamaParams {
        &mut self.params
    }

    pub fn dtype(&self) -> DType {
        self.params.embed_tokens.dtype()
    }

    pub fn device(&self) -> &Device {
        self.params.embed_tokens.device()
    }

    /// Logits `[T, V]` of every token. Materializes the full logits: for evaluation and
    /// tests; training uses [`loss_and_grads`](Self::loss_and_grads).
    pub fn logits(&self, seq: &PackedSequence) -> Result<Tensor> {
        let (h, _) = self.trunk(seq, false)?;
        let (h, _) = rmsnorm::forward(&h, &self.params.norm, self.config.rms_norm_eps)?;
        linear::forward(&h, self.params.output_weight()) // 2·T·C·V FLOPs
    }

    /// Forward-only loss (blocked cross-entropy).
    pub fn loss(&self, seq: &PackedSequence) -> Result<LossOutput> {
        let mut units = Resident::new(&self.params);
        loss_units(&self.config, self.dtype(), self.device(), &mut units, seq)
    }

    /// Loss and the gradient of the token-mean loss for every parameter.
    pub fn loss_and_grads(&self, seq: &PackedSequence) -> Result<(LossOutput, LlamaParams)> {
        self.loss_and_grads_blocked(seq, LOSS_BLOCK_TOKENS)
    }

    /// [`loss_and_grads`](Self::loss_and_grads) with a chosen cross-entropy block size.
    pub fn loss_and_grads_blocked(
        &self,
        seq: &PackedSequence,
        block_tokens: usize,
    ) -> Result<(LossOutput, LlamaParams)> {
        self.loss_and_grads_part(seq, block_tokens, None)
    }

    /// [`loss_and_grads_blocked`](Self::loss_and_grads_blocked), or with `sp` (Ulysses
    /// sequence parallelism, `docs/distributed.md`) this rank's part of it: the rank runs
    /// its token shard of `seq` (every rank of the group passes the same `seq`), and its
    /// `loss_sum`, `loss` and gradients are those of the labels at its positions divided
    /// by the whole sequence's label count, so that their sums over the group are the
    /// sequence's; `label_tokens` is the whole sequence's.
    pub fn loss_and_grads_part(
        &self,
        seq: &PackedSequence,
        block_tokens: usize,
        sp: Option<&SeqGroup>,
    ) -> Result<(LossOutput, LlamaParams)> {
        let mut units = Resident::new(&self.params);
        let out = loss_and_grads_units(
            &self.config,
            self.dtype(),
            self.device(),
            &mut units,
            seq,
            block_tokens,
            sp,
        )?;
        Ok((out, units.into_grads()?))
    }

    /// Embedding and decoder layers. Returns the last layer's output and, with `save`,
    /// every layer's input.
    fn trunk(&self, seq: &PackedSequence, save: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let (ctx, _) = self.ctx_part(seq, None)?;
        self.layers(&self.ids(seq)?, &ctx, save)
    }

    /// Embedding of `ids` (the tokens `ctx` was made for) and the decoder layers.
    fn layers(&self, ids: &Tensor, ctx: &Ctx, save: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let mut x = embedding::forward(ids, &self.params.embed_tokens)?;
        let mut inputs = Vec::with_capacity(if save { self.params.layers.len() } else { 0 });
        for lp in &self.params.layers {
            let y = layer::forward(&x, lp, ctx)?;
            if save {
                inputs.push(x);
            }
            x = y;
        }
        Ok((x, inputs))
    }

    fn ids(&self, seq: &PackedSequence) -> Result<Tensor> {
        ids(&self.config, self.device(), seq)
    }

    fn ctx_part<'a>(
        &self,
        seq: &'a PackedSequence,
        sp: Option<&'a SeqGroup<'a>>,
    ) -> Result<(Ctx<'a>, Range<usize>)> {
        ctx_part(&self.config, self.dtype(), self.device(), seq, sp)
    }

    /// Every token id below the vocabulary size; `first_pos` is the position of
    /// `tokens[0]` (named in the error).
    fn check_tokens(&self, tokens: &[u32], first_pos: usize) -> Result<()> {
        check_tokens(self.config.vocab_size, tokens, first_pos)
    }
}

fn check_tokens(vocab: usize, tokens: &[u32], first_pos: usize) -> Result<()> {
    match tokens.iter().position(|&id| id as usize >= vocab) {
        Some(i) => Err(Error::TokenOutOfRange {
            pos: first_pos + i,
            id: tokens[i],
            vocab,
        }),
        None => Ok(()),
    }
}

/// The token ids of `seq` on `device`, each checked against the vocabulary.
fn ids(config: &LlamaConfig, device: &Device, seq: &PackedSequence) -> Result<Tensor> {
    if seq.is_empty() {
        return Err(Error::Sequence("empty sequence".into()));
    }
    check_tokens(config.vocab_size, seq.input_ids(), 0)?;
    Ok(Tensor::new(seq.input_ids(), device)?)
}

/// The layers' context for `seq`, or with `sp` for this rank's token shard of it,
/// and the tokens it covers. RoPE uses the tokens' positions in the whole sequence;
/// attention the whole sequence's documents.
fn ctx_part<'a>(
    c: &LlamaConfig,
    dtype: DType,
    device: &Device,
    seq: &'a PackedSequence,
    sp: Option<&'a SeqGroup<'a>>,
) -> Result<(Ctx<'a>, Range<usize>)> {
    let sp = sp
        .map(|group| {
            Ok::<_, Error>(SpAttention {
                group,
                layout: Ulysses::new(group.size(), c.heads(), seq.len())?,
            })
        })
        .transpose()?;
    let tokens = match &sp {
        Some(s) => s.layout.tokens(s.group.rank()),
        None => 0..seq.len(),
    };
    let positions = &seq.positions()[tokens.clone()];
    let mut ctx = Ctx::new(c, positions, seq.segments(), dtype, device)?;
    ctx.sp = sp;
    Ok((ctx, tokens))
}

/// [`Llama::loss`] (forward only) with each unit's weights taken from `units` right
/// before use and released right after (model/units.rs): also the held-out loss of
/// weights sharded with `full`, gathered one unit at a time.
pub fn loss_units<U: Units>(
    config: &LlamaConfig,
    dtype: DType,
    device: &Device,
    units: &mut U,
    seq: &PackedSequence,
) -> std::result::Result<LossOutput, U::Error> {
    let (ctx, _) = ctx_part(config, dtype, device, seq, None)?;
    let mut x = embedding::forward(&ids(config, device, seq)?, units.embed()?)?;
    units.release(Unit::Embed);
    for i in 0..config.num_hidden_layers {
        x = layer::forward(&x, units.layer(i)?, &ctx)?;
        units.release(Unit::Layer(i));
    }
    let sum = {
        let (norm, w) = units.head()?;
        let (h, _) = rmsnorm::forward(&x, norm, config.rms_norm_eps)?;
        head::loss(&h, w, seq, LOSS_BLOCK_TOKENS)?
    };
    units.release(Unit::Head);
    Ok(loss_output(sum, seq.num_labels()))
}

/// [`Llama::loss_and_grads_part`] with each unit's weights taken from `units` right
/// before use and released right after, and each unit's gradient handed to `units` as
/// soon as backward produces it (model/units.rs): also the training pass of weights
/// sharded over the ranks (`shard = "full"`).
pub fn loss_and_grads_units<U: Units>(
    config: &LlamaConfig,
    dtype: DType,
    device: &Device,
    units: &mut U,
    seq: &PackedSequence,
    block_tokens: usize,
    sp: Option<&SeqGroup>,
) -> std::result::Result<LossOutput, U::Error> {
    let (ctx, tokens) = ctx_part(config, dtype, device, seq, sp)?;
    let ids = ids(config, device, seq)?.narrow(0, tokens.start, tokens.len())?;
    let mut x = embedding::forward(&ids, units.embed()?)?;
    units.release(Unit::Embed);
    let layers = config.num_hidden_layers;
    let mut inputs = Vec::with_capacity(layers);
    for i in 0..layers {
        let y = layer::forward(&x, units.layer(i)?, &ctx)?;
        units.release(Unit::Layer(i));
        inputs.push(x);
        x = y;
    }
    // The labels at the shard's positions, as rows of the shard; a label on the
    // shard's last token targets the next shard's first token (read from the whole
    // `input_ids`, which every rank has).
    let (positions, targets) = match &ctx.sp {
        Some(s) => s.layout.shard_labels(seq, s.group.rank()),
        None => (seq.label_positions().to_vec(), seq.label_targets().to_vec()),
    };
    let rows: Vec<u32> = positions.iter().map(|&t| t - tokens.start as u32).collect();
    let labels = head::Labels {
        positions: &rows,
        targets: &targets,
        of_sequence: seq.num_labels(),
    };
    let (sum, mut dx, d_norm, d_head) = {
        let (norm, w) = units.head()?;
        let (h, rstd) = rmsnorm::forward(&x, norm, config.rms_norm_eps)?;
        let (sum, dh, d_head) = head::loss_and_grads(&h, w, &labels, block_tokens)?;
        let (dx, d_norm) = rmsnorm::backward(&dh, &x, norm, &rstd)?;
        (sum, dx, d_norm, d_head)
    };
    units.release(Unit::Head);
    drop(x);
    // Tied, the output projection's gradient joins the embedding's at the end.
    let (d_lm_head, d_tied) = if config.tie_word_embeddings {
        (None, Some(d_head))
    } else {
        (Some(d_head), None)
    };
    units.head_grads(d_norm, d_lm_head)?;
    for (i, x) in inputs.into_iter().enumerate().rev() {
        let lp = units.layer(i)?;
        let acts = layer::activations(&x, lp, &ctx)?; // recompute from the saved input
        let (d, g) = layer::backward(&dx, &x, &acts, lp, &ctx)?;
        units.release(Unit::Layer(i));
        dx = d; // `x` and `acts` are freed here
        units.layer_grads(i, g)?;
    }
    let mut d_embed = embedding::backward(&dx, &ids, config.vocab_size)?;
    if let Some(d_head) = d_tied {
        d_embed = (d_embed + d_head)?;
    }
    units.embed_grads(d_embed)?;
    Ok(loss_output(sum, seq.num_labels()))
}

fn loss_output(loss_sum: f64, label_tokens: usize) -> LossOutput {
    LossOutput {
        loss: if label_tokens == 0 {
            0.0
        } else {
            loss_sum / label_tokens as f64
        },
        loss_sum,
        label_tokens,
    }
}
