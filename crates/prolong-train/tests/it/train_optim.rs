//! AdamW, the schedule, clipping and gradient accumulation against hand computations.

use crate::common::{distance, gqa_config, norm, norm_rel_err, to_f64_vec};
use candle_core::{DType, Device, Tensor};
use prolong_rng::SplitMix64;
use prolong_train::optim::{AdamW, AdamWConfig, CosineSchedule, Gradients, decays};
use prolong_train::stage::LossNormalisation;
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

/// Two single-document sequences of `la` and `lb` random tokens of [`tiny_config`]'s
/// vocabulary (drawn in that order from `seed`), and one sequence holding both as
/// separate documents.
fn two_and_both(seed: u64, la: usize, lb: usize) -> ([PackedSequence; 2], PackedSequence) {
    let mut rng = SplitMix64::new(seed);
    let a: Vec<u32> = (0..la).map(|_| rng.below(23) as u32).collect();
    let b: Vec<u32> = (0..lb).map(|_| rng.below(23) as u32).collect();
    let sa = PackedSequence::new(a.clone(), &[[0, la]], None).unwrap();
    let sb = PackedSequence::new(b.clone(), &[[0, lb]], None).unwrap();
    let both: Vec<u32> = a.iter().chain(&b).copied().collect();
    let sab = PackedSequence::new(both, &[[0, la], [la, la + lb]], None).unwrap();
    ([sa, sb], sab)
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
            let p = to_f64_vec(t);
            let n = p.len();
            (p, vec![0.0; n], vec![0.0; n])
        })
        .collect();
    let mut rng = SplitMix64::new(9);
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
            let g = to_f64_vec(gt);
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
            ("weight", to_f64_vec(t), p),
            ("exp_avg", to_f64_vec(&st.exp_avg), m),
            ("exp_avg_sq", to_f64_vec(&st.exp_avg_sq), v),
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
    assert!((to_f64_vec(&g.tensors[0])[0] - 3.0 * scale).abs() < 1e-6);
    // below the threshold nothing changes
    let mut small = Gradients {
        tensors: vec![t(vec![0.3, 0.4])],
    };
    assert!((small.clip(1.0).unwrap() - 0.5).abs() < 1e-7);
    assert_eq!(
        to_f64_vec(&small.tensors[0]),
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
    let ([sa, sb], sab) = two_and_both(5, 10, 10);
    let (loss, grads) = accumulate(
        &model,
        &[sa.clone(), sb.clone()],
        4,
        LossNormalisation::Sequence,
    )
    .unwrap();

    let (la, ga) = model.loss_and_grads_blocked(&sa, 4).unwrap();
    let (lb, gb) = model.loss_and_grads_blocked(&sb, 4).unwrap();
    assert!((loss - (la.loss + lb.loss) / 2.0).abs() < 1e-12);
    for ((x, (_, y)), (_, z)) in grads.tensors.iter().zip(ga.named()).zip(gb.named()) {
        let want = ((y + z).unwrap() * 0.5).unwrap();
        assert_eq!(to_f64_vec(x), to_f64_vec(&want));
    }

    let (lab, gab) = model.loss_and_grads_blocked(&sab, 4).unwrap();
    assert!((loss - lab.loss).abs() < 1e-5, "{loss} vs {}", lab.loss);
    for (x, (name, y)) in grads.tensors.iter().zip(gab.named()) {
        let (err, norm) = (distance(x, y), norm(y));
        assert!(err <= 1e-4 * norm.max(1e-6), "{name}: {err} vs norm {norm}");
    }
}

/// A 2-layer Llama with hidden size 32 (4 heads, 2 kv heads, FFN 64) and `vocab` tokens.
fn small_config(vocab: usize) -> LlamaConfig {
    gqa_config(vocab, 32, 64)
}

/// Mixed precision at the Llama-3 vocabulary (128,256, tiny trunk): the log-sum-exp runs
/// over 128,256 logits, where bf16 sums lose everything past ~256 terms (the old path gave
/// 6.01 for an f32 loss of 11.74). The bf16 loss within 1% of f32's, every
/// gradient within a norm-relative 5%.
#[test]
fn bf16_matches_f32_at_llama3_vocabulary() {
    let cfg = small_config(128_256);
    let m32 = random_llama(&cfg, 3, 0.02, DType::F32, &Device::Cpu).unwrap();
    let m16 = random_llama(&cfg, 3, 0.02, DType::BF16, &Device::Cpu).unwrap();
    let mut rng = SplitMix64::new(11);
    let ids: Vec<u32> = (0..48).map(|_| rng.below(128_256) as u32).collect();
    let seq = PackedSequence::new(ids, &[[0, 20], [20, 48]], None).unwrap();
    let (o32, g32) = m32.loss_and_grads(&seq).unwrap();
    let (o16, g16) = m16.loss_and_grads(&seq).unwrap();
    let rel = (o16.loss - o32.loss).abs() / o32.loss;
    eprintln!(
        "loss: bf16 {} vs f32 {} (relative {rel:.2e})",
        o16.loss, o32.loss
    );
    assert!(rel < 0.01, "bf16 loss {} vs f32 {}", o16.loss, o32.loss);
    for ((name, a), (_, b)) in g16.named().into_iter().zip(g32.named()) {
        let err = norm_rel_err(a, b);
        eprintln!("{name}: norm-relative error {err:.2e}");
        assert!(
            err < 0.02,
            "bf16 gradient of {name}: norm-relative error {err:.3e}"
        );
    }
}

/// Eight AdamW steps in bf16 (f32 master weights and moments) follow the f32 loss curve
/// within 2% at every step, and both curves go down.
#[test]
fn bf16_training_steps_track_f32() {
    let cfg = small_config(512);
    let mut rng = SplitMix64::new(21);
    // a repeated pattern, so that the loss can fall within a few steps
    let pattern: Vec<u32> = (0..16).map(|_| rng.below(512) as u32).collect();
    let batches: Vec<Vec<PackedSequence>> = (0..8)
        .map(|_| {
            (0..2)
                .map(|_| {
                    let off = rng.below(16) as usize;
                    let ids: Vec<u32> = (0..64).map(|i| pattern[(i + off) % 16]).collect();
                    PackedSequence::new(ids, &[[0, 64]], None).unwrap()
                })
                .collect()
        })
        .collect();
    let curve = |dtype: DType| -> Vec<f64> {
        let mut model = random_llama(&cfg, 4, 0.02, dtype, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default(), model.params()).unwrap();
        batches
            .iter()
            .map(|seqs| {
                let (loss, mut grads) =
                    accumulate(&model, seqs, 2048, LossNormalisation::Sequence).unwrap();
                grads.clip(1.0).unwrap();
                opt.update(model.params_mut(), &grads, 3e-3).unwrap();
                loss
            })
            .collect()
    };
    let (c32, c16) = (curve(DType::F32), curve(DType::BF16));
    eprintln!("f32 {c32:?}\nbf16 {c16:?}");
    for (step, (a, b)) in c32.iter().zip(&c16).enumerate() {
        assert!(
            (a - b).abs() / a < 0.02,
            "step {}: bf16 {b} vs f32 {a}",
            step + 1
        );
    }
    assert!(
        c32[7] < c32[0] - 0.5 && c16[7] < c16[0] - 0.5,
        "{c32:?} {c16:?}"
    );
}

/// Both loss normalisations against a hand computation: two micro-batches with 3 and 11
/// labels; per-token losses from the logits in f64. Sequence: the mean of the two means;
/// token: the sum of all 14 token losses over 14 — and its gradient is that of one
/// sequence holding both as documents (whose own loss is that token mean).
#[test]
fn loss_normalisation_sequence_and_token_by_hand() {
    let cfg = tiny_config();
    let model = random_llama(&cfg, 7, 0.5, DType::F32, &Device::Cpu).unwrap();
    let ([sa, sb], sab) = two_and_both(9, 4, 12);
    // hand: −log softmax(logits[p])[ids[p + 1]] for every p but the last
    let token_losses = |seq: &PackedSequence| -> Vec<f64> {
        let ids = seq.input_ids();
        let logits = model.logits(seq).unwrap();
        let rows: Vec<Vec<f64>> = logits.to_dtype(DType::F64).unwrap().to_vec2().unwrap();
        (0..ids.len() - 1)
            .map(|p| {
                let m = rows[p].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + rows[p].iter().map(|z| (z - m).exp()).sum::<f64>().ln();
                lse - rows[p][ids[p + 1] as usize]
            })
            .collect()
    };
    let (la, lb) = (token_losses(&sa), token_losses(&sb));
    assert_eq!((la.len(), lb.len()), (3, 11));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let want_seq = (mean(&la) + mean(&lb)) / 2.0;
    let want_tok = (la.iter().sum::<f64>() + lb.iter().sum::<f64>()) / 14.0;
    assert!(
        (want_seq - want_tok).abs() > 1e-3,
        "the batch must tell them apart"
    );

    let seqs = [sa, sb];
    let (ls, gs) = accumulate(&model, &seqs, 4, LossNormalisation::Sequence).unwrap();
    let (lt, gt) = accumulate(&model, &seqs, 4, LossNormalisation::Token).unwrap();
    assert!(
        (ls - want_seq).abs() < 1e-5,
        "sequence: {ls} vs hand {want_seq}"
    );
    assert!(
        (lt - want_tok).abs() < 1e-5,
        "token: {lt} vs hand {want_tok}"
    );

    let (lab, gab) = model.loss_and_grads_blocked(&sab, 4).unwrap();
    assert!((lab.loss - want_tok).abs() < 1e-5);
    for ((t, s), (name, y)) in gt.tensors.iter().zip(&gs.tensors).zip(gab.named()) {
        let norm = norm(y);
        assert!(
            distance(t, y) <= 1e-4 * norm.max(1e-6),
            "{name}: token gradient off"
        );
        if norm > 1e-3 {
            assert!(
                distance(s, y) > 1e-2 * norm,
                "{name}: sequence gradient equals token's"
            );
        }
    }
}

/// `[train] decay_norms` (ProLong's groups): with zero gradients an update only decays,
/// so a norm weight moves by the factor `1 − lr·wd` exactly when norms decay, and the
/// matrices decay either way.
#[test]
fn decay_norms_decays_the_rmsnorm_weights() {
    let cfg = tiny_config();
    let model = random_llama(&cfg, 1, 0.5, DType::F32, &Device::Cpu).unwrap();
    let zeros = Gradients {
        tensors: model
            .params()
            .named()
            .iter()
            .map(|(_, t)| t.zeros_like().unwrap())
            .collect(),
    };
    for on in [false, true] {
        let mut m = model.clone();
        let mut opt = AdamW::new(AdamWConfig::default(), m.params()).unwrap();
        opt.set_decay_norms(on);
        opt.update(m.params_mut(), &zeros, 0.5).unwrap();
        for ((name, after), (_, before)) in
            m.params().named().into_iter().zip(model.params().named())
        {
            let ratio = to_f64_vec(after)[0] / to_f64_vec(before)[0];
            let decayed = (ratio - (1.0 - 0.5 * 0.1)).abs() < 1e-6;
            let want = decays(&name, before.dims()) || (on && name.ends_with("norm.weight"));
            assert_eq!(decayed, want, "{name} (decay_norms = {on}): ratio {ratio}");
            if !want {
                assert_eq!(ratio, 1.0, "{name}");
            }
        }
    }
}
