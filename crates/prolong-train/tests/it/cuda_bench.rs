//! The GPU table of scripts/gpu-check.sh (feature `cuda`; `--ignored`, it measures time):
//! attention forward+backward TFLOP/s at 8K and 64K tokens, and training tokens/s and MFU
//! of a ~1B-parameter Llama (Llama-3.2-1B's shape) on 64K-token packed sequences with
//! document masking. MFU is against `PEAK_TFLOPS` (default 989, H100/H200 dense bf16).
#![cfg(feature = "cuda")]

use std::time::Instant;

use crate::common::Rng;
use candle_core::{DType, Device};
use prolong_train::metrics::train_flops;
use prolong_train::ops::attention::{self, AttentionInputs, Heads};
use prolong_train::optim::{AdamW, AdamWConfig, Gradients};
use prolong_train::train::init::random_llama;
use prolong_train::{LlamaConfig, PackedSequence};

fn peak() -> f64 {
    std::env::var("PEAK_TFLOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(989.0)
        * 1e12
}

/// Seconds per call of `f`, after one warm-up call, over `n` calls.
fn seconds(dev: &Device, n: usize, mut f: impl FnMut()) -> f64 {
    f();
    dev.synchronize().unwrap();
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    dev.synchronize().unwrap();
    start.elapsed().as_secs_f64() / n as f64
}

/// ProLong-like documents: mostly short, some long, one up to half the sequence.
fn documents(rng: &mut Rng, t: usize) -> Vec<[usize; 2]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < t {
        let len = match rng.below(10) {
            0 => t / 2,
            1..=3 => 4096 + rng.below(8192),
            _ => 64 + rng.below(2048),
        };
        let e = (at + len).min(t);
        out.push([at, e]);
        at = e;
    }
    out
}

#[test]
#[ignore = "GPU benchmark: run by scripts/gpu-check.sh"]
fn gpu_table() {
    let dev = Device::new_cuda(0).expect("a CUDA device");
    let mut rng = Rng::new(1);
    println!("| measurement | value |");
    println!("| --- | --- |");
    let heads = Heads {
        n_head: 32,
        n_kv_head: 8,
        head_dim: 64,
    };
    for t in [8192, 65536] {
        let r = |w: usize, rng: &mut Rng| {
            rng.tensor(&[t, w], 1.0)
                .to_dtype(DType::BF16)
                .unwrap()
                .to_device(&dev)
                .unwrap()
        };
        let (q, k, v, d) = (
            r(2048, &mut rng),
            r(512, &mut rng),
            r(512, &mut rng),
            r(2048, &mut rng),
        );
        // One document: the whole sequence.
        let whole = 0..t;
        let segs = std::slice::from_ref(&whole);
        let x = AttentionInputs::new(&q, &k, &v, &heads, segs);
        let secs = seconds(&dev, 3, || {
            attention::forward(x).unwrap();
            attention::backward(&d, x).unwrap();
        });
        // causal: fwd 2 matmuls of 2·T²/2·H·D, bwd 2.5× that (recomputation not counted)
        let flops = 3.5 * 2.0 * 2.0 * (t as f64).powi(2) / 2.0 * 32.0 * 64.0;
        println!(
            "| attention fwd+bwd, {}K causal, H=32 KV=8 D=64 | {:.1} TFLOP/s ({:.0}% of peak) |",
            t / 1024,
            flops / secs / 1e12,
            100.0 * flops / secs / peak()
        );
    }

    let cfg = LlamaConfig::from_json(
        r#"{"vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
            "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true}"#,
    )
    .unwrap();
    let t = 65536;
    let seq = PackedSequence::new(rng.tokens(t, 128_256), &documents(&mut rng, t), None).unwrap();
    let mut model = random_llama(&cfg, 1, 0.02, DType::BF16, &dev).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), model.params()).unwrap();
    let secs = seconds(&dev, 2, || {
        let (_, grads) = model.loss_and_grads(&seq).unwrap();
        let mut acc = Gradients::default();
        acc.add(&grads).unwrap();
        opt.update(model.params_mut(), &acc, 1e-5).unwrap();
    });
    let flops = train_flops(&cfg, &seq).model;
    println!(
        "| training, ~1B Llama, 64K tokens, documents | {:.0} tokens/s |",
        t as f64 / secs
    );
    println!("| training MFU | {:.1}% |", 100.0 * flops / secs / peak());
}
