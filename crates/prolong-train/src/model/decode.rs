//! Inference: greedy decoding with a KV cache.
//!
//! The prompt is one document at positions `0..P`. [`Llama::prefill`] runs it through the
//! layers in chunks of [`PREFILL_CHUNK_TOKENS`], keeping every layer's keys (after RoPE)
//! and values in a [`KvCache`]; each chunk's queries attend to the cache and, causally,
//! to themselves (ops/attention_decode.rs), so a 128K prompt never builds a 128K×128K
//! score matrix. The first chunk is plain one-document attention (the training path).
//! Each generated token then costs one [`Llama::extend`] by a single token.
//!
//! [`Llama::generate_greedy_uncached`] is the reference: every step recomputes the whole
//! sequence through [`Llama::logits`].

use candle_core::{DType, Device, Tensor};

use super::layer::{self, AttnInputs, Ctx};
use super::{LayerParams, Llama};
use crate::config::{Heads, LlamaConfig};
use crate::error::{Error, Result};
use crate::ops::{attention_decode, embedding, linear, rmsnorm};
use prolong_packed::PackedSequence;

/// Prompt tokens per prefill chunk: a chunk over a prefix of `T` tokens computes
/// `H·chunk·T` attention scores, `(H/KV)·chunk·T` (one kv head's) at a time.
pub const PREFILL_CHUNK_TOKENS: usize = 512;

/// Keys (after RoPE) and values of every layer for the tokens run so far, one document at
/// positions `0..len`. Each layer's buffers are `[KV, capacity, D]`, allocated once:
/// appending copies only the new rows (no quadratic re-copying while decoding), and the
/// head-major layout lets attention read each kv head's `[len, D]` block in place.
///
/// Not `Clone`: clones of the buffers would share (and overwrite) the same storage.
#[derive(Debug)]
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// An empty cache with room for `capacity` tokens of a model with this config.
    pub fn new(
        config: &LlamaConfig,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let shape = (config.n_kv_heads(), capacity, config.head_dim());
        let zeros = || Tensor::zeros(shape, dtype, device);
        let layers = config.num_hidden_layers;
        Ok(Self {
            keys: (0..layers).map(|_| zeros()).collect::<Result<_, _>>()?,
            values: (0..layers).map(|_| zeros()).collect::<Result<_, _>>()?,
            len: 0,
            capacity,
        })
    }

    /// Tokens cached so far (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes layer `layer`'s `k, v [L, KV·D]` after the cached rows; returns that layer's
    /// keys and values of all `len + L` tokens, `[KV, len + L, D]`. [`len`](Self::len)
    /// moves on only in [`advance`](Self::advance), once every layer has written.
    fn write(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
        heads: &Heads,
    ) -> Result<(Tensor, Tensor)> {
        let n = self.len + k.dims()[0];
        let (keys, values) = (&self.keys[layer], &self.values[layer]);
        keys.slice_set(&attention_decode::heads_major(k, heads)?, 1, self.len)?;
        values.slice_set(&attention_decode::heads_major(v, heads)?, 1, self.len)?;
        Ok((keys.narrow(1, 0, n)?, values.narrow(1, 0, n)?))
    }

    fn advance(&mut self, tokens: usize) {
        self.len += tokens;
    }
}

impl Llama {
    /// An empty [`KvCache`] for this model with room for `capacity` tokens.
    pub fn kv_cache(&self, capacity: usize) -> Result<KvCache> {
        KvCache::new(&self.config, capacity, self.dtype(), self.device())
    }

    /// Runs `tokens` (positions `cache.len()..`) through the model, appending their keys and
    /// values to `cache`; returns the logits `[V]` of the last of them. Attention memory:
    /// `H·L·(cache.len() + L)` scores for `L = tokens.len()`.
    pub fn extend(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor> {
        let start = cache.len();
        if tokens.is_empty() {
            return Err(Error::Sequence("no tokens to run".into()));
        }
        if start + tokens.len() > cache.capacity() {
            return Err(Error::Sequence(format!(
                "KV cache of {} tokens cannot take {} more after {start}",
                cache.capacity(),
                tokens.len()
            )));
        }
        self.check_tokens(tokens, start)?;
        let c = &self.config;
        let positions: Vec<u32> = (start..start + tokens.len()).map(|p| p as u32).collect();
        // The new tokens continue the one document of the cache.
        let doc = 0..tokens.len();
        let ctx = Ctx::new(
            c,
            &positions,
            std::slice::from_ref(&doc),
            self.dtype(),
            self.device(),
        )?;
        let ids = Tensor::new(tokens, self.device())?;
        let mut x = embedding::forward(&ids, &self.params.embed_tokens)?;
        for (layer, lp) in self.params.layers.iter().enumerate() {
            x = layer_step(&x, lp, &ctx, cache, layer)?;
        }
        cache.advance(tokens.len());
        let last = x.narrow(0, tokens.len() - 1, 1)?;
        let (h, _) = rmsnorm::forward(&last, &self.params.norm, c.rms_norm_eps)?;
        Ok(linear::forward(&h, self.params.output_weight())?.squeeze(0)?)
    }

    /// [`extend`](Self::extend) by `prompt`, `chunk` tokens at a time; returns the logits
    /// `[V]` of the prompt's last token.
    pub fn prefill(&self, cache: &mut KvCache, prompt: &[u32], chunk: usize) -> Result<Tensor> {
        if prompt.is_empty() {
            return Err(Error::Sequence("empty prompt".into()));
        }
        let mut logits = None;
        for piece in prompt.chunks(chunk.max(1)) {
            logits = Some(self.extend(cache, piece)?);
        }
        Ok(logits.expect("a non-empty prompt has a chunk"))
    }

    /// Greedy decoding with a KV cache; the prompt is one document at positions 0..P.
    /// Stops after max_new_tokens or when a token in `stop` is produced (not included).
    /// Ties in the argmax go to the lowest token id (as `torch.argmax`).
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        stop: &[u32],
    ) -> Result<Vec<u32>> {
        self.generate_greedy_chunked(prompt, max_new_tokens, stop, PREFILL_CHUNK_TOKENS)
    }

    /// [`generate_greedy`](Self::generate_greedy) with a chosen prefill chunk size.
    pub fn generate_greedy_chunked(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        stop: &[u32],
        chunk: usize,
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(Error::Sequence("empty prompt".into()));
        }
        let mut out = Vec::new();
        if max_new_tokens == 0 {
            return Ok(out);
        }
        // The last generated token is never run through the model: P + max_new − 1 rows.
        let mut cache = self.kv_cache(prompt.len() + max_new_tokens - 1)?;
        let mut logits = self.prefill(&mut cache, prompt, chunk)?;
        loop {
            let next = argmax(&logits)?;
            if stop.contains(&next) {
                break;
            }
            out.push(next);
            if out.len() == max_new_tokens {
                break;
            }
            logits = self.extend(&mut cache, &[next])?;
        }
        Ok(out)
    }

    /// The reference for [`generate_greedy`](Self::generate_greedy): every step runs the
    /// whole sequence (prompt and tokens so far, one document) through
    /// [`logits`](Self::logits). Quadratic; for tests.
    pub fn generate_greedy_uncached(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        stop: &[u32],
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(Error::Sequence("empty prompt".into()));
        }
        let mut seq = prompt.to_vec();
        while seq.len() < prompt.len() + max_new_tokens {
            let logits = self.logits(&PackedSequence::single(seq.clone()))?;
            let next = argmax(&logits.get(seq.len() - 1)?)?;
            if stop.contains(&next) {
                break;
            }
            seq.push(next);
        }
        Ok(seq.split_off(prompt.len()))
    }
}

/// Index of the largest of `logits [V]`; the lowest index among equal maxima. NaN never
/// wins over a number.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    let v: Vec<f64> = logits.to_dtype(DType::F64)?.to_vec1()?;
    let mut best: Option<(usize, f64)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b || b.is_nan() && !x.is_nan()) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i as u32)
        .ok_or_else(|| Error::Sequence("argmax of empty logits".into()))
}

/// One decoder layer (model/layer.rs) on the new tokens `x [L, C]`, attention reading
/// the cached keys and values of layer `layer` plus the new ones: the training layer's
/// pieces around a different attention call.
fn layer_step(
    x: &Tensor,
    p: &LayerParams,
    ctx: &Ctx,
    cache: &mut KvCache,
    layer: usize,
) -> Result<Tensor> {
    let AttnInputs { q, k, v, .. } = layer::attn_inputs(x, p, ctx)?;
    let (keys, values) = cache.write(layer, &k, &v, &ctx.heads)?;
    let att = attention_decode::forward(&q, &keys, &values, &ctx.heads)?;
    let mlp = layer::attn_out_mlp(x, &att, p, ctx)?;
    layer::output(&mlp.x2, &mlp.h, p)
}
