//! AdamW, the schedule, clipping and gradient accumulation against hand computations.

#[path = "train_util.rs"]
mod util;

use candle_core::{DType, Device, Tensor};
use prolong_train::optim::{AdamW, AdamWConfig, CosineSchedule, Gradients, decays};
use prolong_train::train::accumulate;
use prolong_train::train::init::random_llama;
use prolong_train::{LlamaConfig, PackedSequence};

fn tiny_config() -> LlamaConfig {
    LlamaConfig::from_json(
        r#"{"vocab_size": 23, "hidden_size": 8, "intermediate_size": 12,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}"#,
    )
    .unwrap()
}

fn vec(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn decay_groups_follow_hf_defaults() {
    assert!(decays("model.layers.0.self_attn.q_proj.weight", &[8, 8]));
    assert!(decays("model.embed_tokens.weight", &[23, 8]));
    assert!(decays("lm_head.weight", &[23, 8]));
    assert!(!decays("model.layers.0.input_layernorm.weight", &[8]));
    assert!(!decays(
        "model.layers.0.post_attention_layernorm.weight",
        &[8]
    ));
    assert!(!decays("model.norm.weight", &[8]));
}

/// Three AdamW steps on a tiny model against the PyTorch update rule computed in f64.
#[test]
fn adamw_matches_hand_computation() {
    let cfg = tiny_config();
    let mut model = random_llama(&cfg, 1, 0.5, DType::F32, &Device::Cpu).unwrap();
    let c = AdamWConfig::default();
    let mut opt = AdamW::new(c, model.params()).unwrap();
    let names: Vec<(String, Vec<usize>)> = cfg.param_shapes();
    // hand state: (p, m, v) per tensor
    let mut hand: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = model
        .params()
        .named()
        .iter()
        .map(|(_, t)| {
            let p = vec(t);
            let n = p.len();
            (p, vec![0.0; n], vec![0.0; n])
        })
        .collect();
    let mut rng = util::Rng(9);
    for (step, lr) in [(1, 1e-2), (2, 3e-2), (3, 5e-3)] {
        let grads: Vec<Tensor> = names
            .iter()
            .map(|(_, s)| {
                let n: usize = s.iter().product();
                let v: Vec<f32> = (0..n)
                    .map(|_| (rng.below(2001) as f32 - 1000.0) / 700.0)
                    .collect();
                Tensor::from_vec(v, s.as_slice(), &Device::Cpu).unwrap()
            })
            .collect();
        let g = Gradients {
            tensors: grads.clone(),
        };
        opt.update(model.params_mut(), &g, lr).unwrap();
        let bc1 = 1.0 - c.beta1.powi(step);
        let bc2 = 1.0 - c.beta2.powi(step);
        for (((name, shape), (p, m, v)), gt) in names.iter().zip(&mut hand).zip(&grads) {
            let g = vec(gt);
            let wd = if decays(name, shape) {
                c.weight_decay
            } else {
                0.0
            };
            for i in 0..p.len() {
                p[i] *= 1.0 - lr * wd;
                m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g[i];
                v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * g[i] * g[i];
                p[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + c.eps);
            }
        }
    }
    assert_eq!(opt.step, 3);
    for ((name, t), (p, m, v)) in model.params().named().iter().zip(&hand) {
        let st = opt.params.iter().find(|s| &s.name == name).unwrap();
        for (what, got, want) in [
            ("weight", vec(t), p),
            ("exp_avg", vec(&st.exp_avg), m),
            ("exp_avg_sq", vec(&st.exp_avg_sq), v),
        ] {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{name} {what}[{i}]: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn schedule_key_values() {
    let s = CosineSchedule::new(1e-5, 0.1, 5000, 0.1);
    assert_eq!(s.warmup_steps, 500);
    assert_eq!(s.lr(0), 0.0);
    assert!((s.lr(250) - 5e-6).abs() < 1e-18);
    assert!((s.lr(500) - 1e-5).abs() < 1e-18);
    // halfway through the cosine: floor + half the span
    assert!((s.lr(2750) - 1e-5 * (0.1 + 0.9 * 0.5)).abs() < 1e-15);
    assert!((s.lr(5000) - 1e-6).abs() < 1e-18);
    // monotone decay after warmup, never below the floor
    let mut prev = f64::INFINITY;
    for step in 500..5000 {
        let lr = s.lr(step);
        assert!(lr <= prev && lr >= 1e-6 - 1e-20);
        prev = lr;
    }
    // HF's ceil rule for the warmup steps
    assert_eq!(CosineSchedule::new(1.0, 0.05, 250, 0.1).warmup_steps, 13);
    assert_eq!(CosineSchedule::new(1.0, 0.0, 10, 0.1).lr(0), 1.0);
}

#[test]
fn clipping_scales_to_max_norm() {
    let t = |v: Vec<f32>| Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap();
    let m = Tensor::from_vec(vec![0f32, 0., 0., 12.], (2, 2), &Device::Cpu).unwrap();
    let mut g = Gradients {
        tensors: vec![t(vec![3.0, 4.0]), m],
    };
    assert!((g.global_norm().unwrap() - 13.0).abs() < 1e-9);
    let norm = g.clip(1.0).unwrap();
    assert!((norm - 13.0).abs() < 1e-9);
    let after = g.global_norm().unwrap();
    assert!((after - 1.0).abs() < 1e-5, "{after}");
    let scale = 1.0 / (13.0 + 1e-6);
    assert!((vec(&g.tensors[0])[0] - 3.0 * scale).abs() < 1e-6);
    // below the threshold nothing changes
    let mut small = Gradients {
        tensors: vec![t(vec![0.3, 0.4])],
    };
    assert!((small.clip(1.0).unwrap() - 0.5).abs() < 1e-7);
    assert_eq!(
        vec(&small.tensors[0]),
        vec![0.30000001192092896, 0.4000000059604645]
    );
}

/// Two micro-batches with the same number of labels: the accumulated loss and gradient
/// (mean of the micro-batch means) equal the token mean over both, i.e. one sequence
/// holding both as separate documents.
#[test]
fn accumulation_of_two_micro_batches_is_the_mean() {
    let cfg = tiny_config();
    let model = random_llama(&cfg, 2, 0.5, DType::F32, &Device::Cpu).unwrap();
    let mut rng = util::Rng(5);
    let a: Vec<u32> = (0..10).map(|_| rng.below(23) as u32).collect();
    let b: Vec<u32> = (0..10).map(|_| rng.below(23) as u32).collect();
    let sa = PackedSequence::new(a.clone(), &[[0, 10]], None).unwrap();
    let sb = PackedSequence::new(b.clone(), &[[0, 10]], None).unwrap();
    let (loss, grads) = accumulate(&model, &[sa.clone(), sb.clone()], 4).unwrap();

    let (la, ga) = model.loss_and_grads_blocked(&sa, 4).unwrap();
    let (lb, gb) = model.loss_and_grads_blocked(&sb, 4).unwrap();
    assert!((loss - (la.loss + lb.loss) / 2.0).abs() < 1e-12);
    for ((x, (_, y)), (_, z)) in grads.tensors.iter().zip(ga.named()).zip(gb.named()) {
        let want = ((y + z).unwrap() * 0.5).unwrap();
        assert_eq!(vec(x), vec(&want));
    }

    let both: Vec<u32> = a.iter().chain(&b).copied().collect();
    let sab = PackedSequence::new(both, &[[0, 10], [10, 20]], None).unwrap();
    let (lab, gab) = model.loss_and_grads_blocked(&sab, 4).unwrap();
    assert!((loss - lab.loss).abs() < 1e-5, "{loss} vs {}", lab.loss);
    for (x, (name, y)) in grads.tensors.iter().zip(gab.named()) {
        let (x, y) = (vec(x), vec(y));
        let err: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = y.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(err <= 1e-4 * norm.max(1e-6), "{name}: {err} vs norm {norm}");
    }
}
