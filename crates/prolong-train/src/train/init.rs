//! Random initialisation of a Llama from a seed (HF's scheme: normal(0, std) for every
//! matrix, ones for the RMSNorm weights), reproducible on any machine.

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::model::{Llama, LlamaParams};

/// SplitMix64, the generator behind [`random_llama`] (its output fixes the initial
/// weights of a seed, so it never changes); trainer checkpoints keep its state.
pub type InitRng = prolong_rng::SplitMix64;

/// Standard normal pairs (Box–Muller).
fn normal_pair(rng: &mut InitRng) -> (f64, f64) {
    let (u1, u2) = (rng.unit(), rng.unit());
    let r = (-2.0 * u1.ln()).sqrt();
    let a = 2.0 * std::f64::consts::PI * u2;
    (r * a.cos(), r * a.sin())
}

/// A Llama with random weights: every matrix normal(0, `std`), every norm weight 1,
/// drawn in checkpoint order from one [`InitRng`] seeded with `seed`.
pub fn random_llama(
    config: &LlamaConfig,
    seed: u64,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<Llama> {
    let mut rng = InitRng::new(seed);
    let mut tensors = std::collections::HashMap::new();
    for (name, shape) in config.param_shapes() {
        let n: usize = shape.iter().product();
        let t = if name.ends_with("norm.weight") {
            Tensor::ones(shape.as_slice(), DType::F32, &Device::Cpu)?
        } else {
            let mut v = Vec::with_capacity(n + 1);
            while v.len() < n {
                let (a, b) = normal_pair(&mut rng);
                v.push((a * std) as f32);
                v.push((b * std) as f32);
            }
            v.truncate(n);
            Tensor::from_vec(v, shape.as_slice(), &Device::Cpu)?
        };
        tensors.insert(name, t);
    }
    let params = LlamaParams::from_named(config, |n| tensors.remove(n), dtype, device)?;
    Llama::new(config.clone(), params)
}
