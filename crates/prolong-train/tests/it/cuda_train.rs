//! Training on the GPU (feature `cuda`, a GPU at ordinal 0): one step against the CPU, the
//! fused AdamW update against the CPU's, and the loss falling on real text. Without a GPU (or the fixture) each test says so and
//! passes.
#![cfg(feature = "cuda")]

use crate::common::{Rng, gpu, gqa_config, norm_rel_err_on_cpu};
use candle_core::{DType, Device};
use prolong_train::optim::{AdamW, AdamWConfig, Gradients};
use prolong_train::train::init::random_llama;
use prolong_train::{LlamaConfig, PackedSequence};

/// Small, but with the shapes the fused kernels take (head dim 64, GQA).
fn config(vocab: usize) -> LlamaConfig {
    gqa_config(vocab, 256, 688)
}

fn sequence(rng: &mut Rng, t: usize, vocab: usize) -> PackedSequence {
    let mut indices = Vec::new();
    let mut at = 0;
    while at < t {
        let e = (at + 1 + rng.below(300)).min(t);
        indices.push([at, e]);
        at = e;
    }
    PackedSequence::new(rng.tokens(t, vocab), &indices, None).unwrap()
}

/// Loss, gradients and one AdamW step: GPU bf16 against CPU f32, same initial weights.
#[test]
fn one_training_step_matches_cpu() {
    let Some(dev) = gpu() else { return };
    let cfg = config(1000);
    let seq = sequence(&mut Rng::new(2), 1024, 1000);
    let mut cpu = random_llama(&cfg, 3, 0.02, DType::F32, &Device::Cpu).unwrap();
    let mut gpu = random_llama(&cfg, 3, 0.02, DType::BF16, &dev).unwrap();
    let (lc, gc) = cpu.loss_and_grads(&seq).unwrap();
    let (lg, gg) = gpu.loss_and_grads(&seq).unwrap();
    assert!(
        (lc.loss - lg.loss).abs() < 1e-2 * lc.loss,
        "loss {} vs {}",
        lg.loss,
        lc.loss
    );
    for ((name, c), (_, g)) in gc.named().iter().zip(gg.named().iter()) {
        let err = norm_rel_err_on_cpu(g, c);
        assert!(err < 5e-2, "gradient {name}: relative error {err}");
    }
    let step = |model: &mut prolong_train::Llama, grads: &prolong_train::LlamaParams| {
        let mut acc = Gradients::default();
        acc.add(grads).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default(), model.params()).unwrap();
        opt.update(model.params_mut(), &acc, 1e-3).unwrap();
    };
    step(&mut cpu, &gc);
    step(&mut gpu, &gg);
    for ((name, c), (_, g)) in cpu.params().named().iter().zip(gpu.params().named().iter()) {
        let err = norm_rel_err_on_cpu(g, c);
        assert!(err < 1e-2, "updated {name}: relative error {err}");
    }
}

/// The fused AdamW kernel (what `AdamW::update` dispatches to for f32 state on a GPU)
/// against the CPU's f32 update: three steps on the same gradients, with and without
/// weight decay (norm weights do not decay), masters within f32 rounding.
#[test]
fn adamw_on_the_gpu_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let cfg = config(1000);
    let cpu = random_llama(&cfg, 4, 0.02, DType::F32, &Device::Cpu).unwrap();
    let gpu_model = random_llama(&cfg, 4, 0.02, DType::F32, &dev).unwrap();
    let mut rng = Rng::new(9);
    let grads: Vec<_> = cpu
        .params()
        .named()
        .iter()
        .map(|(_, t)| rng.tensor(t.dims(), 0.1).to_dtype(DType::F32).unwrap())
        .collect();
    let on = |d: &Device| Gradients {
        tensors: grads.iter().map(|g| g.to_device(d).unwrap()).collect(),
    };
    let (gc, gg) = (on(&Device::Cpu), on(&dev));
    let mut oc = AdamW::new(AdamWConfig::default(), cpu.params()).unwrap();
    let mut og = AdamW::new(AdamWConfig::default(), gpu_model.params()).unwrap();
    for lr in [1e-3, 5e-4, 2e-4] {
        oc.update_states(&gc.tensors, lr).unwrap();
        og.update_states(&gg.tensors, lr).unwrap();
    }
    for (c, g) in oc.params.iter().zip(&og.params) {
        assert!(
            g.master.device().is_cuda(),
            "{}: state left the GPU",
            c.name
        );
        for (what, a, b) in [
            ("master", &c.master, &g.master),
            ("exp_avg", &c.exp_avg, &g.exp_avg),
            ("exp_avg_sq", &c.exp_avg_sq, &g.exp_avg_sq),
        ] {
            let err = norm_rel_err_on_cpu(b, a);
            assert!(err < 1e-5, "{} {what}: relative error {err}", c.name);
        }
    }
}

/// 40 AdamW steps on the KJV text as bytes (vocabulary 256): the loss falls well below
/// its start (ln 256 ≈ 5.5 for the random model).
#[test]
fn loss_falls_on_the_fixture_corpus() {
    let Some(dev) = gpu() else { return };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cache/kjv.txt");
    let Ok(text) = std::fs::read(&path) else {
        eprintln!(
            "skipped: {} is absent (run scripts/fetch-fixtures.sh)",
            path.display()
        );
        return;
    };
    let cfg = config(256);
    let mut model = random_llama(&cfg, 1, 0.02, DType::BF16, &dev).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), model.params()).unwrap();
    let t = 2048;
    let mut losses = Vec::new();
    for step in 0..40 {
        let start = (step * 7919 * t) % (text.len() - t);
        let ids: Vec<u32> = text[start..start + t]
            .iter()
            .map(|&b| u32::from(b))
            .collect();
        let (loss, grads) = model.loss_and_grads(&PackedSequence::single(ids)).unwrap();
        let mut acc = Gradients::default();
        acc.add(&grads).unwrap();
        opt.update(model.params_mut(), &acc, 3e-3).unwrap();
        losses.push(loss.loss);
    }
    let last: f64 = losses[35..].iter().sum::<f64>() / 5.0;
    assert!(last < losses[0] - 2.0, "losses {losses:?}");
}
