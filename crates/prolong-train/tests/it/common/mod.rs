//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use prolong_train::{Llama, LlamaConfig, LlamaParams};

/// `fixtures/hf-llama` of the workspace.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hf-llama")
}

/// Small deterministic generator (xorshift64*), so tests never flake.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn tensor(&mut self, shape: &[usize], scale: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| self.uniform() * scale).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
    pub fn tokens(&mut self, n: usize, vocab: usize) -> Vec<u32> {
        (0..n).map(|_| self.below(vocab) as u32).collect()
    }
}

/// A 2-layer GQA Llama small enough for finite differences.
pub fn tiny_config(tied: bool) -> LlamaConfig {
    LlamaConfig::from_json(&format!(
        r#"{{"vocab_size": 23, "hidden_size": 8, "intermediate_size": 12,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "tie_word_embeddings": {tied}, "model_type": "llama"}}"#
    ))
    .unwrap()
}

/// A 2-layer GQA Llama (4 heads, 2 KV heads; Llama-3's RoPE θ, untied embeddings) of
/// width `hidden`, FFN width `ffn` and `vocab` tokens.
pub fn gqa_config(vocab: usize, hidden: usize, ffn: usize) -> LlamaConfig {
    LlamaConfig::from_json(&format!(
        r#"{{"vocab_size": {vocab}, "hidden_size": {hidden}, "intermediate_size": {ffn},
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": false}}"#
    ))
    .unwrap()
}

/// Random parameters for `cfg` (norm weights near 1, projections ~0.5).
pub fn random_model(cfg: &LlamaConfig, rng: &mut Rng, dtype: DType) -> Llama {
    let shapes = cfg.param_shapes();
    let params = LlamaParams::from_named(
        cfg,
        |name| {
            let shape = &shapes.iter().find(|(n, _)| n == name)?.1;
            let t = rng.tensor(shape, 0.5);
            Some(if name.ends_with("norm.weight") {
                t.affine(0.4, 1.0).unwrap()
            } else {
                t
            })
        },
        dtype,
        &Device::Cpu,
    )
    .unwrap();
    Llama::new(cfg.clone(), params).unwrap()
}

pub fn to_f64_vec(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The largest `|a − b|` over every element.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// `||a − b|| / ||b||` (Frobenius).
pub fn norm_rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (to_f64_vec(a), to_f64_vec(b));
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

/// [`norm_rel_err`] of `a`, on any device and in any float dtype, against `b` on the CPU.
pub fn norm_rel_err_on_cpu(a: &Tensor, b: &Tensor) -> f64 {
    let a = a
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    norm_rel_err(&a, b)
}

/// `||a − b||` (Euclidean) over every element, in f64.
pub fn distance(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (to_f64_vec(a), to_f64_vec(b));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

pub fn norm(t: &Tensor) -> f64 {
    to_f64_vec(t).iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The CUDA device at ordinal 0, or `None` and a line saying the test skipped (no GPU here,
/// or a build without the `cuda` feature).
pub fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// `x` with flat coordinate `i` moved by `delta`.
pub fn perturb(x: &Tensor, i: usize, delta: f64) -> Tensor {
    let mut v = to_f64_vec(x);
    v[i] += delta;
    Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap()
}

/// Central differences of `f` at `coords` of `x` against `analytic` (same shape as `x`).
pub fn fd_check(
    what: &str,
    x: &Tensor,
    analytic: &Tensor,
    coords: &[usize],
    f: impl Fn(&Tensor) -> f64,
) {
    assert_eq!(x.dims(), analytic.dims(), "{what}: gradient shape");
    let g = to_f64_vec(analytic);
    let h = 1e-5;
    for &i in coords {
        let num = (f(&perturb(x, i, h)) - f(&perturb(x, i, -h))) / (2.0 * h);
        let err = (num - g[i]).abs();
        assert!(
            err <= 1e-7 + 1e-5 * num.abs().max(g[i].abs()),
            "{what}[{i}]: finite difference {num:e} vs analytic {:e} (err {err:e})",
            g[i]
        );
    }
}

/// All coordinates of a tensor with `n` elements, or `k` sampled ones.
pub fn sample_coords(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        (0..n).collect()
    } else {
        (0..k).map(|_| rng.below(n)).collect()
    }
}

/// `Σ out ⊙ r` — the scalar whose gradient w.r.t. `out` is `r`.
pub fn dot(out: &Tensor, r: &Tensor) -> f64 {
    (out * r)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// The catalogue of malformed inputs (one file, shared with the other crates' catalogues).
#[path = "../../../../prolong-data/tests/it/common/catalogue.rs"]
pub mod catalogue;

/// `copy_dir`, `sorted_names` and `succeeded` (and `fixture`, `byte_char`), one file
/// with prolong-data's tests.
#[path = "../../../../prolong-data/tests/it/common/shared.rs"]
mod shared;
pub use shared::{copy_dir, sorted_names, succeeded};
