//! Tiled against untiled attention, and the fused CPU path against the
//! generic one.

#![cfg(test)]

use super::*;
use crate::ops::test_values::{max_abs_diff, values};
use candle_core::DType;

/// Causal tiles of 7 queries (documents of 1, 5, 7, 23 and 40 tokens: shorter than a
/// tile, exactly one, and ragged last tiles) against one tile per document, forward
/// and backward, in f64 (generic path) and f32 (fused CPU path).
#[test]
fn tiled_equals_untiled() {
    let heads = Heads {
        n_head: 6,
        n_kv_head: 2,
        head_dim: 8,
    };
    let segments = [0..1, 1..6, 6..13, 13..36, 36..76];
    let t = 76;
    let (q, k, v, dout) = (
        values(&[t, 48], 1),
        values(&[t, 16], 2),
        values(&[t, 16], 3),
        values(&[t, 48], 4),
    );
    for dtype in [DType::F64, DType::F32] {
        let c = |x: &Tensor| x.to_dtype(dtype).unwrap();
        let (q, k, v, dout) = (c(&q), c(&k), c(&v), c(&dout));
        let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
        let x = AttentionInputs::new(&q, &k, &v, &heads, &segments);
        let full = forward_tiled(x, usize::MAX).unwrap();
        let tiled = forward_tiled(x, 7).unwrap();
        assert!(max_abs_diff(&tiled, &full) < tol, "{dtype:?} forward");
        let gf = backward_tiled(&dout, x, usize::MAX).unwrap();
        let gt = backward_tiled(&dout, x, 7).unwrap();
        for (name, a, b) in [
            ("dq", &gt.0, &gf.0),
            ("dk", &gt.1, &gf.1),
            ("dv", &gt.2, &gf.2),
        ] {
            assert!(
                max_abs_diff(a, b) < tol,
                "{dtype:?} {name}: {}",
                max_abs_diff(a, b)
            );
        }
        // and the outputs are not trivially zero
        assert!(max_abs_diff(&full, &full.zeros_like().unwrap()) > 0.1);
    }
}

/// The fused CPU f32 path against the generic candle-ops path (taken by f64).
#[test]
fn fused_f32_matches_generic_f64() {
    let heads = Heads {
        n_head: 4,
        n_kv_head: 2,
        head_dim: 8,
    };
    let t = 40;
    let segments = [0..17, 17..18, 18..19, 19..40];
    let mk = |w: usize, seed: usize| values(&[t, w], seed);
    let (q, k, v, dout) = (mk(32, 1), mk(16, 2), mk(16, 3), mk(32, 4));
    let f32s = |x: &Tensor| x.to_dtype(DType::F32).unwrap();
    let x64 = AttentionInputs::new(&q, &k, &v, &heads, &segments);
    let (q32, k32, v32) = (f32s(&q), f32s(&k), f32s(&v));
    let x32 = AttentionInputs::new(&q32, &k32, &v32, &heads, &segments);
    let out64 = forward(x64).unwrap();
    let out32 = forward(x32).unwrap();
    let g64 = backward(&dout, x64).unwrap();
    let g32 = backward(&f32s(&dout), x32).unwrap();
    assert!(max_abs_diff(&out32, &out64) < 1e-5);
    assert!(max_abs_diff(&g32.0, &g64.0) < 1e-5);
    assert!(max_abs_diff(&g32.1, &g64.1) < 1e-5);
    assert!(max_abs_diff(&g32.2, &g64.2) < 1e-5);
}
