//! Finite-difference checks (f64) of every op's explicit backward, plus forward checks of
//! the ops against naive reference formulas.

use crate::common::{Rng, dot, fd_check, sample_coords, to_f64_vec};
use candle_core::{Device, Tensor};
use prolong_train::ops::attention::{AttentionInputs, Heads};
use prolong_train::ops::rope::Rope;
use prolong_train::ops::{attention, cross_entropy, embedding, linear, rmsnorm, silu_mul};

fn all(t: &Tensor) -> Vec<usize> {
    (0..t.elem_count()).collect()
}

/// [`fd_check`] of `analytic`, an op's backward of `r` with respect to its input `x`, at
/// every coordinate: `r` is the gradient of `Σ forward(x) ⊙ r`.
fn check_backward(
    what: &str,
    x: &Tensor,
    analytic: &Tensor,
    r: &Tensor,
    forward: impl Fn(&Tensor) -> Tensor,
) {
    fd_check(what, x, analytic, &all(x), |x| dot(&forward(x), r));
}

#[test]
fn linear_backward_matches_finite_differences() {
    let mut rng = Rng::new(1);
    let (x, w) = (rng.tensor(&[5, 7], 1.0), rng.tensor(&[4, 7], 1.0));
    let r = rng.tensor(&[5, 4], 1.0);
    let (dx, dw) = linear::backward(&r, &x, &w).unwrap();
    let f = |x: &Tensor, w: &Tensor| linear::forward(x, w).unwrap();
    check_backward("linear dx", &x, &dx, &r, |x| f(x, &w));
    check_backward("linear dw", &w, &dw, &r, |w| f(&x, w));
}

#[test]
fn embedding_backward_matches_finite_differences() {
    let mut rng = Rng::new(2);
    let table = rng.tensor(&[10, 4], 1.0);
    let ids = Tensor::new(&[3u32, 7, 3, 0, 9, 3], &Device::Cpu).unwrap();
    let r = rng.tensor(&[6, 4], 1.0);
    let dt = embedding::backward(&r, &ids, 10).unwrap();
    check_backward("embedding", &table, &dt, &r, |t| {
        embedding::forward(&ids, t).unwrap()
    });
}

#[test]
fn rmsnorm_backward_matches_finite_differences() {
    let mut rng = Rng::new(3);
    let x = rng.tensor(&[5, 8], 2.0);
    let w = rng.tensor(&[8], 1.0);
    let r = rng.tensor(&[5, 8], 1.0);
    let eps = 1e-5;
    let (y, rstd) = rmsnorm::forward(&x, &w, eps).unwrap();
    // forward against the formula
    let (xv, wv, yv) = (to_f64_vec(&x), to_f64_vec(&w), to_f64_vec(&y));
    for t in 0..5 {
        let ms: f64 = xv[t * 8..t * 8 + 8].iter().map(|a| a * a).sum::<f64>() / 8.0;
        for c in 0..8 {
            let want = xv[t * 8 + c] / (ms + eps).sqrt() * wv[c];
            assert!((yv[t * 8 + c] - want).abs() < 1e-12);
        }
    }
    let (dx, dw) = rmsnorm::backward(&r, &x, &w, &rstd).unwrap();
    let f = |x: &Tensor, w: &Tensor| rmsnorm::forward(x, w, eps).unwrap().0;
    check_backward("rmsnorm dx", &x, &dx, &r, |x| f(x, &w));
    check_backward("rmsnorm dw", &w, &dw, &r, |w| f(&x, w));
}

#[test]
fn rope_matches_rotate_half_and_backward_matches_finite_differences() {
    let mut rng = Rng::new(4);
    let (heads, d) = (3, 8);
    let positions = [0u32, 5, 17, 1000, 3, 65_535];
    let theta = 10_000.0;
    let rope = Rope::new(theta, d, &positions, candle_core::DType::F64, &Device::Cpu).unwrap();
    let x = rng.tensor(&[6, heads * d], 1.0);
    let y = to_f64_vec(&rope.forward(&x).unwrap());
    let xv = to_f64_vec(&x);
    for (t, &p) in positions.iter().enumerate() {
        for h in 0..heads {
            let base = t * heads * d + h * d;
            for i in 0..d {
                // HF: x·cos(emb) + rotate_half(x)·sin(emb), emb = cat(freqs, freqs)
                let f = p as f64 * theta.powf(-((2 * (i % (d / 2))) as f64) / d as f64);
                let rot = if i < d / 2 {
                    -xv[base + i + d / 2]
                } else {
                    xv[base + i - d / 2]
                };
                let want = xv[base + i] * f.cos() + rot * f.sin();
                assert!((y[base + i] - want).abs() < 1e-12, "t {t} h {h} i {i}");
            }
        }
    }
    let r = rng.tensor(&[6, heads * d], 1.0);
    let dx = rope.backward(&r).unwrap();
    check_backward("rope", &x, &dx, &r, |x| rope.forward(x).unwrap());
}

#[test]
fn silu_mul_backward_matches_finite_differences() {
    let mut rng = Rng::new(5);
    let g = rng.tensor(&[5, 6], 6.0);
    let u = rng.tensor(&[5, 6], 2.0);
    let r = rng.tensor(&[5, 6], 1.0);
    let (dg, du) = silu_mul::backward(&r, &g, &u).unwrap();
    let f = |g: &Tensor, u: &Tensor| silu_mul::forward(g, u).unwrap();
    check_backward("silu_mul dg", &g, &dg, &r, |g| f(g, &u));
    check_backward("silu_mul du", &u, &du, &r, |u| f(&g, u));
}

#[test]
fn cross_entropy_matches_formula_and_finite_differences() {
    let mut rng = Rng::new(6);
    let logits = rng.tensor(&[5, 9], 4.0);
    let tv = [0u32, 8, 3, 3, 5];
    let targets = Tensor::new(&tv, &Device::Cpu).unwrap();
    let losses = to_f64_vec(&cross_entropy::forward(&logits, &targets).unwrap());
    let lv = to_f64_vec(&logits);
    for b in 0..5 {
        let row = &lv[b * 9..b * 9 + 9];
        let lse = row.iter().map(|z| z.exp()).sum::<f64>().ln();
        assert!((losses[b] - (lse - row[tv[b] as usize])).abs() < 1e-12);
    }
    let dloss = 0.37;
    let (_, dlogits) = cross_entropy::forward_backward(&logits, &targets, dloss).unwrap();
    fd_check("cross_entropy", &logits, &dlogits, &all(&logits), |z| {
        let l = cross_entropy::forward(z, &targets).unwrap();
        dloss * l.sum_all().unwrap().to_scalar::<f64>().unwrap()
    });
}

fn naive_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    h: &Heads,
    docs: &[(usize, usize)],
) -> Vec<f64> {
    let (hh, kv, d) = (h.n_head, h.n_kv_head, h.head_dim);
    let t = q.len() / (hh * d);
    let mut out = vec![0.0; t * hh * d];
    for &(s, e) in docs {
        for i in s..e {
            for head in 0..hh {
                let kvh = head / (hh / kv);
                let qi = &q[i * hh * d + head * d..][..d];
                let scores: Vec<f64> = (s..=i)
                    .map(|j| {
                        let kj = &k[j * kv * d + kvh * d..][..d];
                        qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() / (d as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (jj, j) in (s..=i).enumerate() {
                    let p = (scores[jj] - m).exp() / z;
                    for c in 0..d {
                        out[i * hh * d + head * d + c] += p * v[j * kv * d + kvh * d + c];
                    }
                }
            }
        }
    }
    out
}

#[test]
fn attention_doc_mask_gqa_matches_naive_and_finite_differences() {
    let mut rng = Rng::new(7);
    let heads = Heads {
        n_head: 4,
        n_kv_head: 2,
        head_dim: 4,
    };
    let t = 13;
    let docs = [(0, 5), (5, 6), (6, 7), (7, 12), (12, 13)];
    let segments: Vec<_> = docs.iter().map(|&(s, e)| s..e).collect();
    let q = rng.tensor(&[t, 16], 1.5);
    let k = rng.tensor(&[t, 8], 1.5);
    let v = rng.tensor(&[t, 8], 1.0);
    let out = attention::forward(AttentionInputs::new(&q, &k, &v, &heads, &segments)).unwrap();
    let want = naive_attention(
        &to_f64_vec(&q),
        &to_f64_vec(&k),
        &to_f64_vec(&v),
        &heads,
        &docs,
    );
    for (a, b) in to_f64_vec(&out).iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let r = rng.tensor(&[t, 16], 1.0);
    let x = AttentionInputs::new(&q, &k, &v, &heads, &segments);
    let (dq, dk, dv) = attention::backward(&r, x).unwrap();
    let f = |q: &Tensor, k: &Tensor, v: &Tensor| {
        attention::forward(AttentionInputs::new(q, k, v, &heads, &segments)).unwrap()
    };
    check_backward("attention dq", &q, &dq, &r, |q| f(q, &k, &v));
    check_backward("attention dk", &k, &dk, &r, |k| f(&q, k, &v));
    check_backward("attention dv", &v, &dv, &r, |v| f(&q, &k, v));
}

#[test]
fn attention_rejects_segments_that_do_not_tile() {
    let mut rng = Rng::new(8);
    let heads = Heads {
        n_head: 2,
        n_kv_head: 1,
        head_dim: 2,
    };
    let (q, k, v) = (
        rng.tensor(&[4, 4], 1.0),
        rng.tensor(&[4, 2], 1.0),
        rng.tensor(&[4, 2], 1.0),
    );
    let short = std::iter::once(0..2).collect::<Vec<_>>();
    for segs in [short, vec![0..2, 3..4], vec![0..3, 2..4]] {
        assert!(
            attention::forward(AttentionInputs::new(&q, &k, &v, &heads, &segs)).is_err(),
            "{segs:?}"
        );
    }
}

#[test]
fn sampled_coords_are_in_range() {
    let mut rng = Rng::new(9);
    assert!(sample_coords(&mut rng, 10, 4).iter().all(|&i| i < 10));
    assert_eq!(sample_coords(&mut rng, 3, 4), vec![0, 1, 2]);
}
