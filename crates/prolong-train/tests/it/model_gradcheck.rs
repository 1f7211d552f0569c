//! Finite differences (f64) of the whole model's loss against `loss_and_grads`, for sampled
//! coordinates of every parameter tensor of a tiny 2-layer GQA Llama.

use crate::common;

use crate::common::{Rng, fd_check, random_model, sample_coords, tiny_config};
use candle_core::DType;
use prolong_train::{Llama, LlamaParams, PackedSequence};

fn check_model(tied: bool, mask: Option<&[u8]>, block: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let cfg = tiny_config(tied);
    let model = random_model(&cfg, &mut rng, DType::F64);
    let ids = rng.tokens(14, cfg.vocab_size);
    // documents [0,5), a 1-token one at 5, [6,12), and uncovered tokens 12, 13
    let seq = PackedSequence::new(ids, &[[0, 5], [5, 6], [6, 12]], mask).unwrap();
    let (out, grads) = model.loss_and_grads_blocked(&seq, block).unwrap();
    let fwd = model.loss(&seq).unwrap();
    assert!((out.loss - fwd.loss).abs() < 1e-12);
    assert_eq!(out.label_tokens, seq.num_labels());

    let named_grads = grads.named();
    let n_params = model.params().named().len();
    assert_eq!(named_grads.len(), n_params);
    for (idx, (name, g)) in named_grads.iter().enumerate() {
        let x = model.params().named()[idx].1.clone();
        let coords = sample_coords(&mut rng, x.elem_count(), 6);
        fd_check(name, &x, g, &coords, |x| {
            let mut p: LlamaParams = model.params().clone();
            *p.named_mut()[idx].1 = x.clone();
            let m = Llama::new(model.config().clone(), p).unwrap();
            m.loss(&seq).unwrap().loss
        });
    }
}

#[test]
fn untied_model_gradients_match_finite_differences() {
    check_model(false, None, 2048, 11);
}

#[test]
fn tied_model_gradients_match_finite_differences() {
    check_model(true, None, 2048, 12);
}

#[test]
fn masked_model_gradients_match_finite_differences_with_small_blocks() {
    let mask = [1u8, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1];
    check_model(false, Some(&mask), 3, 13);
}

#[test]
fn loss_block_size_does_not_change_loss_or_gradients() {
    let mut rng = Rng::new(14);
    let cfg = tiny_config(false);
    let model = random_model(&cfg, &mut rng, DType::F64);
    let seq =
        PackedSequence::new(rng.tokens(20, cfg.vocab_size), &[[0, 9], [9, 20]], None).unwrap();
    let (a, ga) = model.loss_and_grads_blocked(&seq, 2048).unwrap();
    for block in [1, 4, 7] {
        let (b, gb) = model.loss_and_grads_blocked(&seq, block).unwrap();
        assert!((a.loss - b.loss).abs() < 1e-12);
        for ((n, x), (_, y)) in ga.named().iter().zip(gb.named()) {
            assert!(common::norm_rel_err(y, x) < 1e-12, "{n} with block {block}");
        }
    }
}
