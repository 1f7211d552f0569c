//! Sharded data parallelism (`[parallel] shard = "grad_op" | "full"`): ZeRO-2 / ZeRO-3
//! on the flat parameter vector of [`ZeroLayout`].
//!
//! Every parameter is laid end to end in [`LlamaParams::named`] order; rank r owns the
//! contiguous shard r of the padded flat vector and keeps, for the parameter pieces in
//! it only, the f32 master weights and both Adam moments (an [`AdamW`] whose
//! parameters are those pieces: the update is element-wise, so a piece gets exactly the
//! arithmetic of its whole tensor on one rank). A step:
//!
//! 1. gradients: each rank's weighted gradient sums, flattened, are reduce-scattered
//!    (f32 sums): `grad_op` once after the step's accumulation, `full` after every
//!    micro-batch into a shard-sized accumulator (the whole gradient never outlives
//!    one micro-batch);
//! 2. the shard is divided by the step's count (as one rank divides its sum);
//! 3. clipping by the global norm: the squared norms of the shards, summed in f64 and
//!    all-gathered, added in rank order (the same on every rank);
//! 4. AdamW on the owned pieces;
//! 5. compute weights: the updated masters are all-gathered and cast to the compute
//!    dtype, into the replicated model (`grad_op`) or, for `full`, only when the next
//!    forward (or an evaluation, a checkpoint) needs them; `full` drops them before the
//!    optimizer step.

use candle_core::{DType, Device, Tensor};

use super::TrainError;
use crate::config::LlamaConfig;
use crate::dist::group::{ProcessGroup, as_bytes, as_bytes_mut};
use crate::dist::zero::{OwnedPiece, ZeroLayout};
use crate::model::{Llama, LlamaParams};
use crate::optim::{AdamW, AdamWConfig, Gradients, ParamState, decays_with_norms};

/// Shard length multiple (elements): 16 f32 = one 64-byte cache line.
const ALIGN: usize = 16;

/// One rank's share of the training state.
pub struct ShardedState {
    pub layout: ZeroLayout,
    pub rank: usize,
    /// Ranks the state is sharded over.
    pub world: usize,
    /// The pieces of parameters this rank owns, in flat order (`opt.params[i]` is
    /// `pieces[i]`).
    pub pieces: Vec<OwnedPiece>,
    /// HF name and shape of every parameter, in flat order.
    pub params: Vec<(String, Vec<usize>)>,
    /// AdamW over the owned pieces (1-D f32 tensors).
    pub opt: AdamW,
}

impl ShardedState {
    /// The state of `model`'s weights (fresh moments, Adam `t = 0`) for rank `rank` of
    /// `world`; only the owned pieces are copied.
    pub fn new(
        model: &LlamaParams,
        config: AdamWConfig,
        decay_norms: bool,
        rank: usize,
        world: usize,
    ) -> Result<Self, TrainError> {
        let named = model.named();
        let numels: Vec<usize> = named.iter().map(|(_, t)| t.elem_count()).collect();
        let layout = ZeroLayout::new(&numels, world, ALIGN)?;
        let pieces = layout.pieces(rank);
        let mut states = Vec::with_capacity(pieces.len());
        for p in &pieces {
            let (name, t) = &named[p.param];
            let master = t
                .flatten_all()?
                .narrow(0, p.in_param.start, p.in_param.len())?
                .to_dtype(DType::F32)?
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
            params: named
                .iter()
                .map(|(n, t)| (n.clone(), t.dims().to_vec()))
                .collect(),
            opt: AdamW {
                config,
                step: 0,
                params: states,
            },
        })
    }

    /// This rank's shard of the sum over the ranks of `grads` (whole tensors, flat
    /// order): one f32 reduce-scatter of the padded flat vector.
    pub fn reduce_scatter(
        &self,
        grads: &Gradients,
        group: &dyn ProcessGroup,
    ) -> Result<Vec<f32>, TrainError> {
        let mut flat = vec![0f32; self.layout.padded_len()];
        if grads.tensors.len() != self.params.len() {
            return Err(TrainError::Model(crate::Error::Config(format!(
                "{} gradient tensors for {} parameters",
                grads.tensors.len(),
                self.params.len()
            ))));
        }
        for (t, r) in grads.tensors.iter().zip(self.layout.param_ranges()) {
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            flat[r.clone()].copy_from_slice(&v);
        }
        let mut shard = vec![0f32; self.layout.shard_len()];
        group.reduce_scatter_sum(&flat, &mut shard)?;
        Ok(shard)
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

    /// This rank's masters laid out as its shard of the flat vector (padding zero).
    fn master_shard(&self) -> Result<Vec<f32>, TrainError> {
        let mut shard = vec![0f32; self.layout.shard_len()];
        for (p, st) in self.pieces.iter().zip(&self.opt.params) {
            shard[p.in_shard.clone()].copy_from_slice(&st.master.to_vec1::<f32>()?);
        }
        Ok(shard)
    }

    /// The whole model in the compute dtype `dtype` (what every rank needs for a forward
    /// and backward): each rank casts its masters' shard to `dtype` (as the replicated
    /// optimizer casts its masters: the same rounding), and the shards are all-gathered
    /// in that dtype, so a bf16 run moves 2 bytes per parameter.
    pub fn gather_model(
        &self,
        config: &LlamaConfig,
        dtype: DType,
        dev: &Device,
        group: &dyn ProcessGroup,
    ) -> Result<Llama, TrainError> {
        let n = self.layout.shard_len();
        let mine = Tensor::from_vec(self.master_shard()?, n, &Device::Cpu)?.to_dtype(dtype)?;
        let mine = safetensors::View::data(&mine);
        let mut flat = vec![0u8; mine.len() * group.size()];
        group.all_gather(&mine, &mut flat)?;
        let flat = Tensor::from_raw_buffer(&flat, dtype, &[self.layout.padded_len()], dev)?;
        let mut by_name = self.params.iter().zip(self.layout.param_ranges());
        let params = LlamaParams::from_named(
            config,
            |name| {
                let ((n, shape), r) = by_name.next()?;
                let t = flat
                    .narrow(0, r.start, r.len())
                    .and_then(|t| t.reshape(shape.as_slice()));
                (n == name).then_some(t.ok())?
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
            let state =
                ShardedState::new(model.params(), AdamWConfig::default(), true, 0, 1).unwrap();
            let got = state
                .gather_model(&cfg, dtype, &Device::Cpu, &Solo)
                .unwrap();
            for ((name, a), (_, b)) in model.params().named().iter().zip(got.params().named()) {
                let a = a.to_dtype(dtype).unwrap();
                assert_eq!(b.dtype(), dtype);
                assert_eq!(a.dims(), b.dims(), "{name}");
                let (a, b) = (
                    a.to_dtype(DType::F32)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                    b.to_dtype(DType::F32)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                );
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{name}"
                );
            }
        }
    }
}
