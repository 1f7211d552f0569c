//! Sharded data parallelism (`[parallel] shard = "grad_op" | "full"`): ZeRO-2 / ZeRO-3
//! on the flat parameters of a [`UnitLayout`].
//!
//! Every parameter is laid end to end in [`LlamaParams::named`] order and the list is
//! cut into units: one unit of everything for `grad_op`, FSDP's units for `full` (the
//! embedding, each decoder layer, the final norm with the head). Each unit's padded
//! flat vector is split into one contiguous shard per rank; rank r keeps, for the
//! parameter pieces in its shards only, the f32 master weights and both Adam moments
//! (an [`AdamW`] whose parameters are those pieces: the update is element-wise, so a
//! piece gets exactly the arithmetic of its whole tensor on one rank). A step:
//!
//! 1. gradients: each rank's weighted gradient sums, flattened, are reduce-scattered
//!    (f32 sums): `grad_op` once after the step's accumulation, `full` unit by unit as
//!    backward produces them, into a shard-sized accumulator (`train/fsdp.rs`);
//! 2. the shard is divided by the step's count (as one rank divides its sum);
//! 3. clipping by the global norm: the squared norms of the shards, summed in f64 and
//!    all-gathered, added in rank order (the same on every rank);
//! 4. AdamW on the owned pieces;
//! 5. compute weights: the updated masters are cast to the compute dtype and
//!    all-gathered, into the replicated model (`grad_op`) or, for `full`, one unit at a
//!    time right before the forward or backward uses it (`train/fsdp.rs`) or a
//!    held-out evaluation (`train/weights.rs`) or a checkpoint (`train/checkpoint/`)
//!    reads it: never whole.

use candle_core::{DType, Device, Tensor};

use super::TrainError;
use crate::config::LlamaConfig;
use crate::dist::group::{ProcessGroup, as_bytes, as_bytes_mut};
use crate::dist::zero::{OwnedPiece, UnitLayout};
use crate::model::{Llama, LlamaParams};
use crate::optim::{AdamW, AdamWConfig, Gradients, ParamState, decays_with_norms};

/// Shard length multiple (elements): 16 f32 = one 64-byte cache line.
const ALIGN: usize = 16;

/// One rank's share of the training state.
pub struct ShardedState {
    pub layout: UnitLayout,
    pub rank: usize,
    /// Ranks the state is sharded over.
    pub world: usize,
    /// The pieces of parameters this rank owns, in flat order (`opt.params[i]` is
    /// `pieces[i]`).
    pub pieces: Vec<OwnedPiece>,
    /// The indices in `pieces` of each unit's pieces.
    unit_pieces: Vec<std::ops::Range<usize>>,
    /// HF name and shape of every parameter, in flat order.
    pub params: Vec<(String, Vec<usize>)>,
    /// AdamW over the owned pieces (1-D f32 tensors).
    pub opt: AdamW,
    /// The compute weights gathered from the shards and not yet released.
    pub gathered: GatherMeter,
}

/// Bytes of gathered compute weights a rank holds, and the most it held at once: what
/// `[parallel] shard = "full"` keeps to a unit at a time. A count kept by the code that
/// gathers and frees (each [`gather_unit`](ShardedState::gather_unit) adds its unit's
/// padded bytes until [`release_unit`](ShardedState::release_unit)), not a
/// measurement, so tests can bound it exactly.
#[derive(Debug, Default)]
pub struct GatherMeter {
    alive: std::cell::Cell<u64>,
    peak: std::cell::Cell<u64>,
}

impl GatherMeter {
    pub fn add(&self, bytes: u64) {
        self.alive.set(self.alive.get() + bytes);
        self.peak.set(self.peak.get().max(self.alive.get()));
    }

    pub fn sub(&self, bytes: u64) {
        self.alive.set(self.alive.get().saturating_sub(bytes));
    }

    /// Bytes held now.
    pub fn alive(&self) -> u64 {
        self.alive.get()
    }

    /// The most bytes held at once since the last [`reset_peak`](Self::reset_peak).
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }

    /// Starts a new peak from what is held now.
    pub fn reset_peak(&self) {
        self.peak.set(self.alive.get());
    }
}

impl ShardedState {
    /// The state of `model`'s weights (fresh moments, Adam `t = 0`) for rank `rank` of
    /// `world`, in FSDP's units with `per_unit` (else one flat vector); only the owned
    /// pieces are copied.
    pub fn new(
        model: &LlamaParams,
        config: AdamWConfig,
        decay_norms: bool,
        rank: usize,
        world: usize,
        per_unit: bool,
    ) -> Result<Self, TrainError> {
        let named = model.named();
        let numels: Vec<usize> = named.iter().map(|(_, t)| t.elem_count()).collect();
        let units = if per_unit {
            // embed_tokens, each layer's tensors, then the final norm (and lm_head)
            let per_layer = model.layers.first().map_or(0, |l| l.tensors().len());
            let mut u = Vec::with_capacity(model.layers.len() + 2);
            u.push(0..1);
            u.extend((0..model.layers.len()).map(|l| 1 + l * per_layer..1 + (l + 1) * per_layer));
            u.push(1 + model.layers.len() * per_layer..numels.len());
            u
        } else {
            std::iter::once(0..numels.len()).collect()
        };
        let layout = UnitLayout::new(&numels, &units, world, ALIGN)?;
        let pieces = layout.pieces(rank);
        let unit_pieces = layout
            .units()
            .iter()
            .map(|u| {
                let first = pieces.partition_point(|p| p.param < u.params.start);
                first..pieces.partition_point(|p| p.param < u.params.end)
            })
            .collect();
        let mut states = Vec::with_capacity(pieces.len());
        for p in &pieces {
            let (name, t) = &named[p.param];
            // The f32 shard state stays on the host whatever the compute device (as
            // ZeRO-Offload's): the process group's gradient shards are host slices,
            // and AdamW runs on them there. On a GPU a step moves, per parameter,
            // its f32 gradient down (4 bytes, `reduce_scatter_unit`) and its gathered
            // compute weight up (2 bytes in bf16, `gather_unit`; again for each
            // re-gather under `full`).
            let master = t
                .flatten_all()?
                .narrow(0, p.in_param.start, p.in_param.len())?
                .to_dtype(DType::F32)?
                .to_device(&Device::Cpu)?
                .contiguous()?;
            states.push(ParamState {
                name: name.clone(),
                decay: decays_with_norms(name, t.dims(), decay_norms),
                exp_avg: master.zeros_like()?,
                exp_avg_sq: master.zeros_like()?,
                master,
            });
        }
        Ok(Self {
            layout,
            rank,
            world,
            pieces,
            unit_pieces,
            params: named
                .iter()
                .map(|(n, t)| (n.clone(), t.dims().to_vec()))
                .collect(),
            opt: AdamW {
                config,
                step: 0,
                params: states,
            },
            gathered: GatherMeter::default(),
        })
    }

    /// This rank's shard of the sum over the ranks of `grads` (whole tensors, flat
    /// order): one f32 reduce-scatter per unit.
    pub fn reduce_scatter(
        &self,
        grads: &Gradients,
        group: &dyn ProcessGroup,
    ) -> Result<Vec<f32>, TrainError> {
        if grads.tensors.len() != self.params.len() {
            return Err(TrainError::Model(crate::Error::Config(format!(
                "{} gradient tensors for {} parameters",
                grads.tensors.len(),
                self.params.len()
            ))));
        }
        let mut shard = vec![0f32; self.layout.shard_len()];
        for (u, unit) in self.layout.units().iter().enumerate() {
            self.reduce_scatter_unit(u, &grads.tensors[unit.params.clone()], &mut shard, group)?;
        }
        Ok(shard)
    }

    /// Adds this rank's shard of the sum over the ranks of unit `u`'s gradient `grads`
    /// (f32, the unit's tensors in order) into `shard`, the rank's local accumulator.
    pub fn reduce_scatter_unit(
        &self,
        u: usize,
        grads: &[Tensor],
        shard: &mut [f32],
        group: &dyn ProcessGroup,
    ) -> Result<(), TrainError> {
        let unit = &self.layout.units()[u];
        let mut flat = vec![0f32; unit.zero.padded_len()];
        for (t, r) in grads.iter().zip(unit.zero.param_ranges()) {
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            flat[r.clone()].copy_from_slice(&v);
        }
        let mut part = vec![0f32; unit.zero.shard_len()];
        group.reduce_scatter_sum(&flat, &mut part)?;
        let mine = &mut shard[unit.offset..unit.offset + part.len()];
        mine.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// The global L2 norm of the gradient whose shards the ranks hold (squares summed in
    /// f64 per shard, the shards' sums added in rank order); then clipping as
    /// `torch.nn.utils.clip_grad_norm_` (scale by `max_norm / (norm + 1e-6)` when the
    /// norm exceeds `max_norm > 0`). Returns the norm before clipping.
    pub fn clip(
        &self,
        shard: &mut [f32],
        max_norm: f64,
        group: &dyn ProcessGroup,
    ) -> Result<f64, TrainError> {
        let mine: f64 = shard.iter().map(|&g| (g as f64) * (g as f64)).sum();
        let mut all = vec![0f64; group.size()];
        group.all_gather(as_bytes(&[mine]), as_bytes_mut(&mut all))?;
        let norm = all.iter().sum::<f64>().sqrt();
        if max_norm > 0.0 {
            let coef = max_norm / (norm + 1e-6);
            if coef < 1.0 {
                let c = coef as f32; // candle's affine scales by an f32 alike
                shard.iter_mut().for_each(|g| *g *= c);
            }
        }
        Ok(norm)
    }

    /// AdamW with learning rate `lr` on the owned pieces, `shard` this rank's gradient.
    pub fn update(&mut self, shard: &[f32], lr: f64) -> Result<(), TrainError> {
        let grads = self
            .pieces
            .iter()
            .map(|p| Tensor::from_slice(&shard[p.in_shard.clone()], p.in_shard.len(), &Device::Cpu))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.opt.update_states(&grads, lr)?;
        Ok(())
    }

    /// Unit `u`'s tensors in the compute dtype `dtype`, in order and shaped: each rank
    /// casts its shard of the unit's masters to `dtype` (as the replicated optimizer
    /// casts its masters: the same rounding), and the shards are all-gathered in that
    /// dtype, so a bf16 run moves 2 bytes per parameter. The tensors are views of one
    /// buffer of the unit's padded length.
    pub fn gather_unit(
        &self,
        u: usize,
        dtype: DType,
        dev: &Device,
        group: &dyn ProcessGroup,
    ) -> Result<Vec<Tensor>, TrainError> {
        let unit = &self.layout.units()[u];
        let mut shard = vec![0f32; unit.zero.shard_len()];
        for i in self.unit_pieces[u].clone() {
            let r = self.pieces[i].in_shard.start - unit.offset
                ..self.pieces[i].in_shard.end - unit.offset;
            shard[r].copy_from_slice(&self.opt.params[i].master.to_vec1::<f32>()?);
        }
        let n = shard.len();
        let mine = Tensor::from_vec(shard, n, &Device::Cpu)?.to_dtype(dtype)?;
        let mine = safetensors::View::data(&mine);
        let mut flat = vec![0u8; mine.len() * group.size()];
        group.all_gather(&mine, &mut flat)?;
        let flat = Tensor::from_raw_buffer(&flat, dtype, &[unit.zero.padded_len()], dev)?;
        self.gathered.add(self.unit_bytes(u, dtype));
        let shapes = &self.params[unit.params.clone()];
        Ok(shapes
            .iter()
            .zip(unit.zero.param_ranges())
            .map(|((_, shape), r)| flat.narrow(0, r.start, r.len())?.reshape(shape.as_slice()))
            .collect::<candle_core::Result<_>>()?)
    }

    /// Bytes of unit `u`'s gathered buffer (padding included) in `dtype`.
    pub fn unit_bytes(&self, u: usize, dtype: DType) -> u64 {
        (self.layout.units()[u].zero.padded_len() * dtype.size_in_bytes()) as u64
    }

    /// Counts unit `u`'s gathered weights (in `dtype`) as freed.
    pub fn release_unit(&self, u: usize, dtype: DType) {
        self.gathered.sub(self.unit_bytes(u, dtype));
    }

    /// Counts a model [gathered whole](Self::gather_model) as freed.
    pub fn release_model(&self, dtype: DType) {
        (0..self.layout.units().len()).for_each(|u| self.release_unit(u, dtype));
    }

    /// The whole model in the compute dtype (every unit [gathered](Self::gather_unit)),
    /// for what needs all of it at once: `grad_op`'s compute weights (after each update
    /// and after a resume). Counted as held until
    /// [`release_model`](Self::release_model).
    pub fn gather_model(
        &self,
        config: &LlamaConfig,
        dtype: DType,
        dev: &Device,
        group: &dyn ProcessGroup,
    ) -> Result<Llama, TrainError> {
        let mut all = Vec::with_capacity(self.params.len());
        for u in 0..self.layout.units().len() {
            all.extend(self.gather_unit(u, dtype, dev, group)?);
        }
        let mut by_name = self.params.iter().zip(all);
        let params = LlamaParams::from_named(
            config,
            |name| {
                let ((n, _), t) = by_name.next()?;
                (n == name).then_some(t)
            },
            dtype,
            dev,
        )?;
        Ok(Llama::new(config.clone(), params)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::group::Solo;
    use crate::train::init::random_llama;

    /// The compute weights gathered from the shards are the replicated optimizer's: the
    /// masters cast to the compute dtype, bit for bit (bf16 moves as bf16).
    #[test]
    fn gathered_weights_are_the_masters_cast() {
        let init: crate::stage::RandomInit = toml::from_str(
            "seed = 1\nlayers = 2\nhidden = 32\nheads = 4\nkv_heads = 2\nffn = 48\nvocab = 64",
        )
        .unwrap();
        let cfg = init.llama_config();
        for dtype in [DType::F32, DType::BF16] {
            let model = random_llama(&cfg, 3, 0.02, DType::F32, &Device::Cpu).unwrap();
            let state = ShardedState::new(model.params(), AdamWConfig::default(), true, 0, 1, true)
                .unwrap();
            let got = state
                .gather_model(&cfg, dtype, &Device::Cpu, &Solo)
                .unwrap();
            for ((name, a), (_, b)) in model.params().named().iter().zip(got.params().named()) {
                let a = a.to_dtype(dtype).unwrap();
                assert_eq!(b.dtype(), dtype);
                assert_eq!(a.dims(), b.dims(), "{name}");
                let values = |t: &Tensor| {
                    t.to_dtype(DType::F32)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                };
                let (a, b) = (values(&a), values(b));
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{name}"
                );
            }
        }
    }
}
