//! AdamW with fp32 master weights and moments, global-norm clipping, gradient
//! accumulation and the learning-rate schedule.
//!
//! * Update rule: PyTorch `torch.optim.AdamW` (decoupled weight decay applied first,
//!   `p ← p·(1 − lr·wd)`, then `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//!   `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`).
//! * Weight decay groups, as HF Trainer's defaults: decay on every matrix (projections,
//!   `embed_tokens`, `lm_head`), none on norm weights (and biases — Llama has none).
//!   Rule: a tensor decays iff it has ≥ 2 dimensions and its name does not contain
//!   `norm`. [`AdamW::set_decay_norms`] decays the RMSNorm weights as well, which is what
//!   ProLong's training ran (`[train] decay_norms`).
//! * Master weights and both moments are fp32 whatever the compute dtype; after each step
//!   the model's tensors are the master weights cast to the model's dtype (for an fp32
//!   model they share storage).
//! * Adam's own step count `t` (bias correction) is part of the optimizer state; it
//!   continues when a stage starts from another stage's moments (as PyTorch's per-param
//!   `step` does), while the trainer's step counter and schedule start afresh.
//!
//! Everything is written with candle tensor ops, so it runs on whichever device the model
//! lives on; on CPU in f32 one fused pass per tensor does the same arithmetic (bit for
//! bit) without the dozen intermediate tensors, and on a GPU (feature `cuda`) the fused
//! AdamW kernel does it in place (f32 arithmetic alike, up to the kernel's rounding of
//! `1 − β`).

pub mod schedule;

use std::collections::HashMap;

use candle_core::{D, DType, Tensor};

use crate::error::{Error, Result};
use crate::model::LlamaParams;
use crate::ops::cpu;

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

/// Whether the parameter called `name` with shape `dims` gets weight decay under HF
/// Trainer's default groups (no decay on norm weights).
pub fn decays(name: &str, dims: &[usize]) -> bool {
    dims.len() >= 2 && !name.contains("norm")
}

/// Whether `name` is an RMSNorm weight (`[train] decay_norms` decays them too).
fn is_norm(name: &str) -> bool {
    name.ends_with("norm.weight")
}

/// Whether the parameter `name` of shape `dims` decays, `[train] decay_norms` given.
pub fn decays_with_norms(name: &str, dims: &[usize], decay_norms: bool) -> bool {
    decays(name, dims) || (decay_norms && is_norm(name))
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

    /// Also decays the RMSNorm weights (`on`), or not (HF Trainer's default groups).
    /// ProLong decays them: its own `LlamaRMSNorm` class is not in the layer-norm list
    /// HF Trainer excludes (see `[train] decay_norms`).
    pub fn set_decay_norms(&mut self, on: bool) {
        for p in &mut self.params {
            p.decay = decays_with_norms(&p.name, p.master.dims(), on);
        }
    }

    /// One update with learning rate `lr` and fp32 gradients `grads` (named order). The
    /// model's tensors are replaced by the new master weights cast to their dtype.
    pub fn update(&mut self, model: &mut LlamaParams, grads: &Gradients, lr: f64) -> Result<()> {
        let mut targets = model.named_mut();
        if targets.len() != self.params.len() {
            return Err(Error::Config(format!(
                "optimizer holds {} tensors, model {}",
                self.params.len(),
                targets.len(),
            )));
        }
        self.update_states(&grads.tensors, lr)?;
        for (st, (_, target)) in self.params.iter().zip(&mut targets) {
            **target = st.master.to_dtype(target.dtype())?;
        }
        Ok(())
    }

    /// One update of the master weights and moments alone, `grads[i]` the fp32 gradient
    /// of `params[i]` (a whole tensor, or the piece of one a sharded optimizer owns: the
    /// update is element-wise, so a piece gets exactly the arithmetic of its tensor).
    pub fn update_states(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        let c = self.config;
        if grads.len() != self.params.len() {
            return Err(Error::Config(format!(
                "optimizer holds {} tensors, gradients {}",
                self.params.len(),
                grads.len()
            )));
        }
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let step = Step {
            decay: 1.0 - lr * c.weight_decay,
            beta1: c.beta1,
            beta2: c.beta2,
            inv_sqrt_bc2: 1.0 / bc2.sqrt(),
            eps: c.eps,
            step_size: lr / bc1,
        };
        for (st, g) in self.params.iter_mut().zip(grads) {
            let decay = st.decay && c.weight_decay != 0.0;
            if !step.on_gpu(st, g, decay)? && !step.fused(st, g, decay)? {
                step.generic(st, g, decay)?;
            }
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
                *slot = take_like(map, &p.name, &p.master)?;
            }
        }
        self.step = step;
        Ok(())
    }

    /// Replaces the master weights by saved fp32 ones (for a model whose compute dtype is
    /// not fp32: its own weights were rounded).
    pub fn load_masters(&mut self, masters: &mut HashMap<String, Tensor>) -> Result<()> {
        for p in &mut self.params {
            p.master = take_like(masters, &p.name, &p.master)?;
        }
        Ok(())
    }
}

/// The saved tensor `name` taken out of `saved`, as f32 on `like`'s device; missing or
/// not of `like`'s shape is an error naming it.
fn take_like(saved: &mut HashMap<String, Tensor>, name: &str, like: &Tensor) -> Result<Tensor> {
    let t = saved.remove(name).ok_or_else(|| Error::MissingTensor {
        name: name.to_owned(),
    })?;
    if t.dims() != like.dims() {
        return Err(Error::TensorShape {
            name: name.to_owned(),
            expected: like.dims().to_vec(),
            actual: t.dims().to_vec(),
        });
    }
    Ok(t.to_dtype(DType::F32)?.to_device(like.device())?)
}

/// The constants of one AdamW update.
struct Step {
    /// `1 − lr·wd` (for the parameters that decay).
    decay: f64,
    beta1: f64,
    beta2: f64,
    inv_sqrt_bc2: f64,
    eps: f64,
    /// `lr / (1 − β₁ᵗ)`.
    step_size: f64,
}

impl Step {
    /// The update with candle ops (any device and dtype).
    fn generic(&self, st: &mut ParamState, g: &Tensor, decay: bool) -> Result<()> {
        if decay {
            st.master = st.master.affine(self.decay, 0.0)?;
        }
        st.exp_avg = (st.exp_avg.affine(self.beta1, 0.0)? + g.affine(1.0 - self.beta1, 0.0)?)?;
        st.exp_avg_sq =
            (st.exp_avg_sq.affine(self.beta2, 0.0)? + g.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
        let denom = st.exp_avg_sq.sqrt()?.affine(self.inv_sqrt_bc2, self.eps)?;
        let upd = (&st.exp_avg / denom)?.affine(self.step_size, 0.0)?;
        st.master = (&st.master - upd)?;
        Ok(())
    }

    /// The fused CUDA kernel (`ops::cuda::fused::adamw`): the same update in one pass,
    /// written in place of the master and moments, when they and the gradient are
    /// contiguous f32 tensors on a GPU; `false` (nothing changed) otherwise.
    #[cfg(feature = "cuda")]
    fn on_gpu(&self, st: &mut ParamState, g: &Tensor, decay: bool) -> Result<bool> {
        use crate::ops::cuda::fused::{AdamwStep, adamw};
        let f = |x: f64| x as f32;
        let step = AdamwStep {
            decay: if decay { f(self.decay) } else { 1.0 },
            beta1: f(self.beta1),
            beta2: f(self.beta2),
            inv_sqrt_bc2: f(self.inv_sqrt_bc2),
            eps: f(self.eps),
            step_size: f(self.step_size),
        };
        let done = adamw(&st.master, &st.exp_avg, &st.exp_avg_sq, g, step)?;
        Ok(done.is_some())
    }

    #[cfg(not(feature = "cuda"))]
    fn on_gpu(&self, _st: &mut ParamState, _g: &Tensor, _decay: bool) -> Result<bool> {
        Ok(false)
    }

    /// The same f32 arithmetic as [`generic`](Self::generic), element by element in one
    /// pass, when the master, moments and gradient are contiguous f32 CPU tensors;
    /// `false` (nothing changed) otherwise.
    fn fused(&self, st: &mut ParamState, g: &Tensor, decay: bool) -> Result<bool> {
        let f = |x: f64| x as f32; // candle's affine casts its constants to f32 alike
        let (wd, b1, b2) = (f(self.decay), f(self.beta1), f(self.beta2));
        let (c1, c2) = (f(1.0 - self.beta1), f(1.0 - self.beta2));
        let (inv, eps, lr) = (f(self.inv_sqrt_bc2), f(self.eps), f(self.step_size));
        let tensors = [&st.master, &st.exp_avg, &st.exp_avg_sq, g];
        let out = cpu::with_f32s(&tensors, |x| {
            let (p, m, v, g) = (x[0], x[1], x[2], x[3]);
            let n = p.len();
            let (mut po, mut mo, mut vo) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            for i in 0..n {
                let p = if decay { p[i] * wd } else { p[i] };
                let m = m[i] * b1 + g[i] * c1;
                let v = v[i] * b2 + (g[i] * g[i]) * c2;
                let denom = v.sqrt() * inv + eps;
                po[i] = p - (m / denom) * lr;
                mo[i] = m;
                vo[i] = v;
            }
            (po, mo, vo)
        })?;
        let Some((p, m, v)) = out else {
            return Ok(false);
        };
        let dims = st.master.dims().to_vec();
        st.master = cpu::tensor(p, &dims)?;
        st.exp_avg = cpu::tensor(m, &dims)?;
        st.exp_avg_sq = cpu::tensor(v, &dims)?;
        Ok(true)
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
        self.add_scaled(grads, 1.0)
    }

    /// Adds `s ·` one micro-batch's gradients (fp32; `s = 1` adds them unchanged).
    pub fn add_scaled(&mut self, grads: &LlamaParams, s: f64) -> Result<()> {
        let named = grads.named();
        let f32_scaled = |t: &Tensor| -> Result<Tensor> {
            let t = t.to_dtype(DType::F32)?;
            Ok(if s == 1.0 { t } else { t.affine(s, 0.0)? })
        };
        if self.tensors.is_empty() {
            self.tensors = named
                .into_iter()
                .map(|(_, t)| f32_scaled(t))
                .collect::<Result<_>>()?;
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
            *acc = (&*acc + f32_scaled(g)?)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn values(n: usize, seed: u64, scale: f32) -> Tensor {
        let mut x = seed;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        Tensor::from_vec(v, (n / 8, 8), &Device::Cpu).unwrap()
    }

    /// The fused CPU f32 update gives the generic candle-ops update bit for bit.
    #[test]
    fn fused_update_matches_generic_bitwise() {
        let step = Step {
            decay: 1.0 - 3e-3 * 0.1,
            beta1: 0.9,
            beta2: 0.95,
            inv_sqrt_bc2: 1.0 / (1.0f64 - 0.95f64.powi(3)).sqrt(),
            eps: 1e-8,
            step_size: 3e-3 / (1.0 - 0.9f64.powi(3)),
        };
        let g = values(4096, 4, 2.0);
        for decay in [true, false] {
            let state = ParamState {
                name: "w".into(),
                master: values(4096, 1, 1.0),
                exp_avg: values(4096, 2, 0.1),
                exp_avg_sq: values(4096, 3, 0.01).abs().unwrap(),
                decay,
            };
            let (mut a, mut b) = (state.clone(), state);
            assert!(step.fused(&mut a, &g, decay).unwrap());
            step.generic(&mut b, &g, decay).unwrap();
            for (x, y) in [
                (&a.master, &b.master),
                (&a.exp_avg, &b.exp_avg),
                (&a.exp_avg_sq, &b.exp_avg_sq),
            ] {
                let (x, y): (Vec<f32>, Vec<f32>) = (
                    x.flatten_all().unwrap().to_vec1().unwrap(),
                    y.flatten_all().unwrap().to_vec1().unwrap(),
                );
                assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()));
            }
            assert!(a.master.dims() == [512, 8]);
        }
        // f64 tensors take the generic path
        let mut s64 = ParamState {
            name: "w".into(),
            master: Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap(),
            exp_avg: Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap(),
            exp_avg_sq: Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap(),
            decay: false,
        };
        let g64 = Tensor::ones((2, 2), DType::F64, &Device::Cpu).unwrap();
        assert!(!step.fused(&mut s64, &g64, false).unwrap());
    }
}
