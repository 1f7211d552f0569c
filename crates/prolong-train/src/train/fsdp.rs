//! `[parallel] shard = "full"` (FSDP FULL_SHARD): the compute weights exist only one
//! unit at a time. [`UnitGather`] is the training pass's source of weights
//! ([`Units`]): a unit (the embedding, a decoder layer, the final norm with the head) is
//! all-gathered in the compute dtype right before the forward uses it and dropped right
//! after; again for its recomputation and backward; and its gradient, weighted as the
//! step weights its micro-batch, is reduce-scattered into this rank's shard
//! accumulator as soon as backward produces it. Every rank makes the same calls in the
//! same order (same micro-batch count, same layers), so the collectives pair up.
//!
//! Peak gathered weights per rank: one unit, two at the head of a model with tied
//! embeddings (the output projection is the embedding's weight), never the model.
//! Nothing overlaps a gather with compute here (no prefetch on CPU ranks).

use candle_core::{DType, Device, Tensor};

use super::TrainError;
use super::sharded::ShardedState;
use super::step::{ShardedStep, count, flops, progress_point, sharded_step, weight};
use crate::config::LlamaConfig;
use crate::dist::group::ProcessGroup;
use crate::dist::ulysses::SeqGroup;
use crate::model::loss_and_grads_units;
use crate::model::params::LayerParams;
use crate::model::units::{Unit, Units};
use crate::stage::LossNormalisation;
use prolong_packed::PackedSequence;

/// Weights gathered for one unit.
enum Held {
    Embed(Tensor),
    Layer(LayerParams),
    Head {
        norm: Tensor,
        lm_head: Option<Tensor>,
    },
}

/// The units of a sharded model, gathered on demand (module doc).
pub struct UnitGather<'a> {
    state: &'a ShardedState,
    config: &'a LlamaConfig,
    dtype: DType,
    dev: &'a Device,
    group: &'a dyn ProcessGroup,
    /// Gathered weights by unit index (0 embedding, 1 + l layer l, last the head).
    held: Vec<Option<Held>>,
    /// The rank's gradient shard: the sum over the ranks of the handed-over gradients.
    pub shard: Vec<f32>,
    /// The weight of the current micro-batch's gradient in the step's sums.
    pub weight: f64,
}

impl<'a> UnitGather<'a> {
    pub fn new(
        state: &'a ShardedState,
        config: &'a LlamaConfig,
        dtype: DType,
        dev: &'a Device,
        group: &'a dyn ProcessGroup,
    ) -> Self {
        // The pass's peak is counted by the state's meter from here.
        state.gathered.reset_peak();
        Self {
            state,
            config,
            dtype,
            dev,
            group,
            held: (0..state.layout.units().len()).map(|_| None).collect(),
            shard: vec![0f32; state.layout.shard_len()],
            weight: 1.0,
        }
    }

    /// The most gathered weight elements (padding included) alive at once so far.
    pub fn peak_gathered(&self) -> usize {
        (self.state.gathered.peak() / self.dtype.size_in_bytes() as u64) as usize
    }

    fn head_unit(&self) -> usize {
        self.held.len() - 1
    }

    /// Gathers unit `u` unless it is held.
    fn hold(&mut self, u: usize) -> Result<&Held, TrainError> {
        if self.held[u].is_none() {
            let mut t = self
                .state
                .gather_unit(u, self.dtype, self.dev, self.group)?
                .into_iter();
            let mut next = || {
                t.next()
                    .ok_or_else(|| crate::Error::Config(format!("unit {u} has too few tensors")))
            };
            let held = if u == 0 {
                Held::Embed(next()?)
            } else if u == self.head_unit() {
                let norm = next()?;
                let lm_head = (!self.config.tie_word_embeddings)
                    .then(&mut next)
                    .transpose()?;
                Held::Head { norm, lm_head }
            } else {
                Held::Layer(LayerParams::from_fn(self.config, |_, _| next())?)
            };
            self.held[u] = Some(held);
        }
        self.held[u].as_ref().ok_or_else(|| not_held(u))
    }

    fn drop_unit(&mut self, u: usize) {
        if self.held[u].take().is_some() {
            self.state.release_unit(u, self.dtype);
        }
    }

    /// Reduce-scatters unit `u`'s gradient, weighted as [`Gradients::add_scaled`]
    /// weights a micro-batch (f32, scaled unless the weight is 1).
    ///
    /// [`Gradients::add_scaled`]: crate::optim::Gradients::add_scaled
    fn hand_over(&mut self, u: usize, grads: Vec<&Tensor>) -> Result<(), TrainError> {
        let w = self.weight;
        let scaled = grads
            .into_iter()
            .map(|t| {
                let t = t.to_dtype(DType::F32)?;
                if w == 1.0 { Ok(t) } else { t.affine(w, 0.0) }
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut shard = std::mem::take(&mut self.shard);
        let r = self
            .state
            .reduce_scatter_unit(u, &scaled, &mut shard, self.group);
        self.shard = shard;
        r
    }
}

/// A pass that ends early (an error) frees what it holds; so does the state's count.
impl Drop for UnitGather<'_> {
    fn drop(&mut self) {
        (0..self.held.len()).for_each(|u| self.drop_unit(u));
    }
}

fn not_held(u: usize) -> TrainError {
    TrainError::Model(crate::Error::Config(format!("unit {u} was not gathered")))
}

impl Units for UnitGather<'_> {
    type Error = TrainError;

    fn embed(&mut self) -> Result<&Tensor, TrainError> {
        match self.hold(0)? {
            Held::Embed(t) => Ok(t),
            _ => Err(not_held(0)),
        }
    }

    fn layer(&mut self, i: usize) -> Result<&LayerParams, TrainError> {
        match self.hold(1 + i)? {
            Held::Layer(p) => Ok(p),
            _ => Err(not_held(1 + i)),
        }
    }

    fn head(&mut self) -> Result<(&Tensor, &Tensor), TrainError> {
        let h = self.head_unit();
        self.hold(h)?;
        if self.config.tie_word_embeddings {
            self.hold(0)?;
        }
        match (&self.held[h], &self.held[0]) {
            (
                Some(Held::Head {
                    norm,
                    lm_head: Some(w),
                }),
                _,
            ) => Ok((norm, w)),
            (
                Some(Held::Head {
                    norm,
                    lm_head: None,
                }),
                Some(Held::Embed(w)),
            ) => Ok((norm, w)),
            _ => Err(not_held(h)),
        }
    }

    fn release(&mut self, unit: Unit) {
        match unit {
            Unit::Embed => self.drop_unit(0),
            Unit::Layer(i) => self.drop_unit(1 + i),
            Unit::Head => {
                self.drop_unit(self.head_unit());
                self.drop_unit(0); // held for the tied output projection
            }
        }
    }

    fn layer_grads(&mut self, i: usize, g: LayerParams) -> Result<(), TrainError> {
        self.hand_over(1 + i, g.tensors().into_iter().map(|(_, t)| t).collect())
    }

    fn head_grads(&mut self, d_norm: Tensor, d_lm_head: Option<Tensor>) -> Result<(), TrainError> {
        let h = self.head_unit();
        self.hand_over(
            h,
            std::iter::once(&d_norm).chain(d_lm_head.as_ref()).collect(),
        )
    }

    fn embed_grads(&mut self, d: Tensor) -> Result<(), TrainError> {
        self.hand_over(0, vec![&d])
    }
}

/// The step over `seqs` (this rank's micro-batches) with `full` sharding: every
/// micro-batch's pass through [`UnitGather`], then the step's sums over the ranks and
/// the division. Also returns the most gathered weight elements alive at once.
#[allow(clippy::too_many_arguments)]
pub fn accumulate_full(
    state: &ShardedState,
    config: &LlamaConfig,
    dtype: DType,
    dev: &Device,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
    group: &dyn ProcessGroup,
    sp: Option<&SeqGroup>,
) -> Result<(ShardedStep, usize), TrainError> {
    let mut units = UnitGather::new(state, config, dtype, dev, group);
    let mut loss = 0.0;
    for seq in seqs {
        let w = weight(norm, seq.num_labels());
        units.weight = w;
        let out = loss_and_grads_units(config, dtype, dev, &mut units, seq, loss_block, sp)?;
        loss += w * out.loss;
        progress_point();
    }
    let peak = units.peak_gathered();
    let (count, flops) = (count(norm, seqs, sp), flops(config, seqs, sp));
    let shard = std::mem::take(&mut units.shard);
    Ok((sharded_step(group, loss, count, flops, shard)?, peak))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::group::Solo;
    use crate::optim::AdamWConfig;
    use crate::train::init::random_llama;
    use crate::train::step::accumulate;

    /// A `full` step's pass (one unit gathered at a time, each unit's gradient
    /// reduce-scattered as backward produces it) gives the replicated step's loss and
    /// gradient bit for bit, and holds at most the largest unit's gathered weights at
    /// once (two units at the head when the embeddings are tied): a count of elements,
    /// not a measurement, so the bound is exact. With 4 layers that is under a quarter of
    /// the model.
    #[test]
    fn full_step_holds_one_unit_and_equals_the_replicated_step() {
        for tied in [false, true] {
            let init: crate::stage::RandomInit = toml::from_str(&format!(
                "seed = 1\nlayers = 4\nhidden = 32\nheads = 4\nkv_heads = 2\nffn = 48\nvocab = 64\ntied = {tied}"
            ))
            .unwrap();
            let cfg = init.llama_config();
            let dev = Device::Cpu;
            let model = random_llama(&cfg, 3, 0.02, DType::F32, &dev).unwrap();
            let seqs: Vec<PackedSequence> = (0..3u32)
                .map(|s| {
                    let ids = (0..24).map(|i| (i * 7 + s * 13) % 64).collect();
                    PackedSequence::new(ids, &[[0, 10], [10, 24]], None).unwrap()
                })
                .collect();
            let norm = LossNormalisation::Token;
            let (loss, grads) = accumulate(&model, &seqs, 8, norm).unwrap();
            let state = ShardedState::new(model.params(), AdamWConfig::default(), true, 0, 1, true)
                .unwrap();
            let (step, peak) =
                accumulate_full(&state, &cfg, DType::F32, &dev, &seqs, 8, norm, &Solo, None)
                    .unwrap();
            assert_eq!(step.loss.to_bits(), loss.to_bits(), "tied {tied}");
            for p in &state.pieces {
                let want = grads.tensors[p.param]
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let got = &step.shard[p.in_shard.clone()];
                assert!(
                    want[p.in_param.clone()]
                        .iter()
                        .zip(got)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "tied {tied}: {}",
                    state.params[p.param].0
                );
            }
            let units: Vec<usize> = state
                .layout
                .units()
                .iter()
                .map(|u| u.zero.padded_len())
                .collect();
            let largest = *units.iter().max().unwrap();
            let model_len = state.layout.numel();
            let want = if tied {
                largest.max(units[0] + units[units.len() - 1])
            } else {
                largest
            };
            assert_eq!(peak, want, "tied {tied}: units {units:?}");
            // What the plan counts (model/units.rs), less the padding of two units.
            let held = crate::model::units::most_held(&cfg) as usize;
            assert!(held <= peak && peak - held < 2 * 16, "{held} vs {peak}");
            assert!(
                peak <= 2 * largest && 4 * peak < model_len,
                "{peak} of {model_len}"
            );
        }
    }
}
