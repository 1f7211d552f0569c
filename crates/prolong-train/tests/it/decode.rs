//! Greedy decoding with a KV cache against the uncached reference (the whole sequence
//! through `Llama::logits` at every step), on the golden HF model (fixtures/hf-llama) and
//! on random tiny models (f32: fused CPU softmax; f64: the generic path).

use crate::common::{Rng, golden_dir, max_abs_diff, random_model, tiny_config};
use candle_core::{DType, Device, Tensor};
use prolong_train::model::decode::argmax;
use prolong_train::{Llama, PackedSequence};

fn golden_model() -> Llama {
    Llama::load(golden_dir().join("model"), DType::F32, &Device::Cpu).unwrap()
}

/// Cached (several prefill chunk sizes) and uncached greedy decoding give the same tokens.
fn assert_cached_equals_uncached(model: &Llama, prompts: &[Vec<u32>], new_tokens: usize) {
    for prompt in prompts {
        let want = model
            .generate_greedy_uncached(prompt, new_tokens, &[])
            .unwrap();
        assert_eq!(want.len(), new_tokens);
        for chunk in [1, 4, 7, prompt.len(), 512] {
            let got = model
                .generate_greedy_chunked(prompt, new_tokens, &[], chunk)
                .unwrap();
            assert_eq!(
                got,
                want,
                "prompt of {} tokens, chunk {chunk}",
                prompt.len()
            );
        }
        assert_eq!(
            model.generate_greedy(prompt, new_tokens, &[]).unwrap(),
            want
        );
    }
}

/// The logits of the cache path after a chunked prefill and after each single-token step
/// equal the rows of one full forward over the whole sequence.
fn assert_step_logits_match(model: &Llama, seq: &[u32], prompt_len: usize, chunk: usize) {
    let full = model.logits(&PackedSequence::single(seq.to_vec())).unwrap();
    let mut cache = model.kv_cache(seq.len()).unwrap();
    let mut logits = model
        .prefill(&mut cache, &seq[..prompt_len], chunk)
        .unwrap();
    for t in prompt_len..=seq.len() {
        let err = max_abs_diff(&logits, &full.get(t - 1).unwrap());
        assert!(err < 1e-4, "position {}: max abs error {err:e}", t - 1);
        if t < seq.len() {
            logits = model.extend(&mut cache, &seq[t..t + 1]).unwrap();
        }
    }
    assert_eq!(cache.len(), seq.len());
}

#[test]
fn golden_model_cached_equals_uncached() {
    let model = golden_model();
    let mut rng = Rng::new(11);
    // lengths 1, below one chunk, across several 7-token chunks, and a multiple of 7
    let prompts: Vec<Vec<u32>> = [1, 5, 16, 28].map(|n| rng.tokens(n, 512)).to_vec();
    assert_cached_equals_uncached(&model, &prompts, 10);
}

#[test]
fn golden_model_step_logits_match_full_forward() {
    let model = golden_model();
    let seq = Rng::new(12).tokens(40, 512);
    for (prompt_len, chunk) in [(1, 7), (23, 7), (23, 23), (30, 4)] {
        assert_step_logits_match(&model, &seq, prompt_len, chunk);
    }
}

#[test]
fn random_tiny_models_cached_equals_uncached() {
    for (dtype, tied, seed) in [(DType::F32, false, 1), (DType::F64, true, 2)] {
        let model = random_model(&tiny_config(tied), &mut Rng::new(seed), dtype);
        let mut rng = Rng::new(seed + 100);
        let prompts: Vec<Vec<u32>> = [2, 9, 15].map(|n| rng.tokens(n, 23)).to_vec();
        assert_cached_equals_uncached(&model, &prompts, 12);
        let seq = rng.tokens(30, 23);
        for (prompt_len, chunk) in [(13, 4), (29, 8)] {
            assert_step_logits_match(&model, &seq, prompt_len, chunk);
        }
    }
}

#[test]
fn stop_token_ends_generation_and_is_not_included() {
    let model = golden_model();
    let prompt = Rng::new(13).tokens(9, 512);
    let free = model.generate_greedy(&prompt, 12, &[]).unwrap();
    let stop = free[5];
    let first = free.iter().position(|&t| t == stop).unwrap();
    let stopped = model.generate_greedy(&prompt, 12, &[999, stop]).unwrap();
    assert_eq!(stopped, free[..first]);
    assert_eq!(
        model
            .generate_greedy_uncached(&prompt, 12, &[stop])
            .unwrap(),
        stopped
    );
    assert!(model.generate_greedy(&prompt, 0, &[]).unwrap().is_empty());
}

#[test]
fn argmax_takes_the_lowest_id_among_ties() {
    let t = |v: Vec<f32>| Tensor::new(v, &Device::Cpu).unwrap();
    assert_eq!(argmax(&t(vec![1.0, 3.0, 3.0, 0.0])).unwrap(), 1);
    assert_eq!(argmax(&t(vec![-2.0, -1.0, -1.5])).unwrap(), 1);
    assert_eq!(argmax(&t(vec![f32::NAN, 0.5, 2.0, 2.0])).unwrap(), 2);
}

#[test]
fn bad_inputs_are_errors() {
    let model = golden_model();
    assert!(model.generate_greedy(&[], 3, &[]).is_err());
    let err = model.generate_greedy(&[1, 2, 600], 3, &[]).unwrap_err();
    assert!(err.to_string().contains("600"), "{err}");
    let mut cache = model.kv_cache(4).unwrap();
    model.prefill(&mut cache, &[1, 2, 3], 2).unwrap();
    assert!(model.extend(&mut cache, &[4, 5]).is_err(), "cache is full");
    assert_eq!(
        cache.len(),
        3,
        "a refused extend leaves the cache as it was"
    );
}

/// Per-token losses: one per label, at the label positions, each equal to the
/// cross-entropy read off the full logits, and their mean is `Llama::loss`.
#[test]
fn token_losses_match_logits_and_loss() {
    let golden = golden_model();
    let mut rng = Rng::new(14);
    let tiny = random_model(&tiny_config(false), &mut rng, DType::F64);
    let ids = rng.tokens(40, 512);
    let mask: Vec<u8> = (0..40).map(|i| u8::from(i % 5 != 2)).collect();
    let cases = [
        (
            &golden,
            PackedSequence::new(ids.clone(), &[[0, 11], [11, 12], [14, 40]], None).unwrap(),
        ),
        (
            &tiny,
            PackedSequence::new(
                ids.iter().map(|&t| t % 23).collect(),
                &[[3, 40]],
                Some(&mask),
            )
            .unwrap(),
        ),
    ];
    for (model, seq) in cases {
        let losses = model.token_losses(&seq).unwrap();
        let positions: Vec<u32> = losses.iter().map(|&(t, _)| t as u32).collect();
        assert_eq!(positions, seq.label_positions());
        let logits = model.logits(&seq).unwrap().to_dtype(DType::F64).unwrap();
        for (&(t, loss), &target) in losses.iter().zip(seq.label_targets()) {
            let row: Vec<f64> = logits.get(t).unwrap().to_vec1().unwrap();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
            let want = lse - row[target as usize];
            assert!((loss - want).abs() < 1e-4, "position {t}: {loss} vs {want}");
        }
        let mean = losses.iter().map(|&(_, l)| l).sum::<f64>() / losses.len() as f64;
        let out = model.loss(&seq).unwrap();
        assert_eq!(out.label_tokens, losses.len());
        assert!((mean - out.loss).abs() < 1e-9 * out.loss.abs().max(1.0));
    }
}
