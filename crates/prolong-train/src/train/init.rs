//! Random initialisation of a Llama from a seed (HF's scheme: normal(0, std) for every
//! matrix, ones for the RMSNorm weights), reproducible on any machine.

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::model::{Llama, LlamaParams};

/// SplitMix64, the generator behind [`random_llama`] (its output fixes the initial
/// weights of a seed, so it never changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitRng {
    pub state: u64,
}

impl InitRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal pairs (Box–Muller).
    fn normal_pair(&mut self) -> (f64, f64) {
        let (u1, u2) = (self.unit(), self.unit());
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        (r * a.cos(), r * a.sin())
    }
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
                let (a, b) = rng.normal_pair();
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
