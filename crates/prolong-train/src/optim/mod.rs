//! AdamW with fp32 master weights and moments, global-norm clipping, gradient
//! accumulation and the learning-rate schedule.
//!
//! * Update rule: PyTorch `torch.optim.AdamW` (decoupled weight decay applied first,
//!   `p ← p·(1 − lr·wd)`, then `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//!   `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`).
//! * Weight decay groups, as HF Trainer's defaults (which ProLong uses): decay on every
//!   matrix (projections, `embed_tokens`, `lm_head`), none on norm weights (and biases —
//!   Llama has none). Rule: a tensor decays iff it has ≥ 2 dimensions and its name does
//!   not contain `norm`.
//! * Master weights and both moments are fp32 whatever the compute dtype; after each step
//!   the model's tensors are the master weights cast to the model's dtype (for an fp32
//!   model they share storage).
//! * Adam's own step count `t` (bias correction) is part of the optimizer state; it
//!   continues when a stage starts from another stage's moments (as PyTorch's per-param
//!   `step` does), while the trainer's step counter and schedule start afresh.
//!
//! Everything is written with candle tensor ops, so it runs on whichever device the model
//! lives on.

pub mod schedule;

use std::collections::HashMap;

use candle_core::{D, DType, Tensor};

use crate::error::{Error, Result};
use crate::model::LlamaParams;

pub use schedule::CosineSchedule;

/// AdamW hyper-parameters (the learning rate comes per step from the schedule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// ProLong: β = (0.9, 0.95), ε = 1e-8, weight decay 0.1.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

/// Whether the parameter called `name` with shape `dims` gets weight decay.
pub fn decays(name: &str, dims: &[usize]) -> bool {
    dims.len() >= 2 && !name.contains("norm")
}

/// The state of one parameter.
#[derive(Debug, Clone)]
pub struct ParamState {
    pub name: String,
    /// fp32 master copy of the weight.
    pub master: Tensor,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    pub decay: bool,
}

/// AdamW over the parameters of a [`LlamaParams`], in [`LlamaParams::named`] order.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    /// Number of updates applied so far (Adam's `t` after the last update).
    pub step: u64,
    pub params: Vec<ParamState>,
}

impl AdamW {
    /// Fresh state: fp32 copies of `params`, zero moments, `t = 0`.
    pub fn new(config: AdamWConfig, params: &LlamaParams) -> Result<Self> {
        let params = params
            .named()
            .into_iter()
            .map(|(name, t)| {
                let master = t.to_dtype(DType::F32)?;
                Ok(ParamState {
                    decay: decays(&name, t.dims()),
                    exp_avg: master.zeros_like()?,
                    exp_avg_sq: master.zeros_like()?,
                    master,
                    name,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            step: 0,
            params,
        })
    }

    /// One update with learning rate `lr` and fp32 gradients `grads` (named order). The
    /// model's tensors are replaced by the new master weights cast to their dtype.
    pub fn update(&mut self, model: &mut LlamaParams, grads: &Gradients, lr: f64) -> Result<()> {
        let c = self.config;
        let mut targets = model.named_mut();
        if targets.len() != self.params.len() || grads.tensors.len() != self.params.len() {
            return Err(Error::Config(format!(
                "optimizer holds {} tensors, model {}, gradients {}",
                self.params.len(),
                targets.len(),
                grads.tensors.len()
            )));
        }
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let step_size = lr / bc1;
        for ((st, (_, target)), g) in self.params.iter_mut().zip(&mut targets).zip(&grads.tensors) {
            if st.decay && c.weight_decay != 0.0 {
                st.master = st.master.affine(1.0 - lr * c.weight_decay, 0.0)?;
            }
            st.exp_avg = (st.exp_avg.affine(c.beta1, 0.0)? + g.affine(1.0 - c.beta1, 0.0)?)?;
            st.exp_avg_sq =
                (st.exp_avg_sq.affine(c.beta2, 0.0)? + g.sqr()?.affine(1.0 - c.beta2, 0.0)?)?;
            let denom = st.exp_avg_sq.sqrt()?.affine(1.0 / bc2.sqrt(), c.eps)?;
            let upd = (&st.exp_avg / denom)?.affine(step_size, 0.0)?;
            st.master = (&st.master - upd)?;
            **target = st.master.to_dtype(target.dtype())?;
        }
        Ok(())
    }

    /// `(exp_avg, exp_avg_sq)` by HF parameter name.
    pub fn moments(&self) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
        let m = self.params.iter();
        (
            m.clone()
                .map(|p| (p.name.clone(), p.exp_avg.clone()))
                .collect(),
            m.map(|p| (p.name.clone(), p.exp_avg_sq.clone())).collect(),
        )
    }

    /// Master weights by HF parameter name.
    pub fn masters(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.master.clone()))
            .collect()
    }

    /// Replaces the moments (and Adam's `t`) by saved ones; every parameter must be
    /// present with its shape.
    pub fn load_moments(
        &mut self,
        exp_avg: &mut HashMap<String, Tensor>,
        exp_avg_sq: &mut HashMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for p in &mut self.params {
            for (map, slot) in [
                (&mut *exp_avg, &mut p.exp_avg),
                (&mut *exp_avg_sq, &mut p.exp_avg_sq),
            ] {
                let t = map.remove(&p.name).ok_or_else(|| Error::MissingTensor {
                    name: p.name.clone(),
                })?;
                if t.dims() != p.master.dims() {
                    return Err(Error::TensorShape {
                        name: p.name.clone(),
                        expected: p.master.dims().to_vec(),
                        actual: t.dims().to_vec(),
                    });
                }
                *slot = t.to_dtype(DType::F32)?.to_device(p.master.device())?;
            }
        }
        self.step = step;
        Ok(())
    }

    /// Replaces the master weights by saved fp32 ones (for a model whose compute dtype is
    /// not fp32: its own weights were rounded).
    pub fn load_masters(&mut self, masters: &mut HashMap<String, Tensor>) -> Result<()> {
        for p in &mut self.params {
            let t = masters
                .remove(&p.name)
                .ok_or_else(|| Error::MissingTensor {
                    name: p.name.clone(),
                })?;
            if t.dims() != p.master.dims() {
                return Err(Error::TensorShape {
                    name: p.name.clone(),
                    expected: p.master.dims().to_vec(),
                    actual: t.dims().to_vec(),
                });
            }
            p.master = t.to_dtype(DType::F32)?.to_device(p.master.device())?;
        }
        Ok(())
    }
}

/// fp32 gradients of every parameter, in [`LlamaParams::named`] order, accumulated over
/// micro-batches.
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    pub tensors: Vec<Tensor>,
}

impl Gradients {
    /// Adds one micro-batch's gradients (any dtype; converted to fp32). Accumulation runs in
    /// micro-batch order, so the sum is reproducible.
    pub fn add(&mut self, grads: &LlamaParams) -> Result<()> {
        let named = grads.named();
        if self.tensors.is_empty() {
            self.tensors = named
                .into_iter()
                .map(|(_, t)| t.to_dtype(DType::F32))
                .collect::<candle_core::Result<_>>()?;
            return Ok(());
        }
        if named.len() != self.tensors.len() {
            return Err(Error::Config(format!(
                "{} gradient tensors, accumulated {}",
                named.len(),
                self.tensors.len()
            )));
        }
        for (acc, (_, g)) in self.tensors.iter_mut().zip(named) {
            *acc = (&*acc + g.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// Multiplies every gradient by `s`.
    pub fn scale(&mut self, s: f64) -> Result<()> {
        for t in &mut self.tensors {
            *t = t.affine(s, 0.0)?;
        }
        Ok(())
    }

    /// The L2 norm of all gradients together (rows summed in fp32, the rest in f64).
    pub fn global_norm(&self) -> Result<f64> {
        let mut sq = 0.0f64;
        for t in &self.tensors {
            let s = t.sqr()?;
            let s = if s.rank() >= 2 { s.sum(D::Minus1)? } else { s };
            sq += s.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Global-norm clipping as `torch.nn.utils.clip_grad_norm_`: when the norm exceeds
    /// `max_norm`, every gradient is scaled by `max_norm / (norm + 1e-6)`. Returns the norm
    /// before clipping. `max_norm <= 0` disables clipping.
    pub fn clip(&mut self, max_norm: f64) -> Result<f64> {
        let norm = self.global_norm()?;
        if max_norm > 0.0 {
            let coef = max_norm / (norm + 1e-6);
            if coef < 1.0 {
                self.scale(coef)?;
            }
        }
        Ok(norm)
    }
}
