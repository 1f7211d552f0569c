//! The fused CUDA kernels against the CPU path (feature `cuda`, a GPU at ordinal 0): inputs
//! are drawn once, rounded to bf16, and run in f32 on the CPU and in bf16 on the GPU;
//! results agree within bf16 tolerance. Without a GPU each test says so and passes.
#![cfg(feature = "cuda")]

use crate::common::{Rng, gpu, norm_rel_err_on_cpu};
use candle_core::{DType, Device, Tensor};
use prolong_train::PackedSequence;
use prolong_train::ops::attention::{self, AttentionInputs, Heads};
use prolong_train::ops::{cross_entropy, rmsnorm, rope::Rope, silu_mul};

/// A random tensor, bf16-rounded: `(cpu f32, gpu bf16)` holding the same values.
fn pair(rng: &mut Rng, shape: &[usize], scale: f64, gpu: &Device) -> (Tensor, Tensor) {
    let b = rng.tensor(shape, scale).to_dtype(DType::BF16).unwrap();
    (b.to_dtype(DType::F32).unwrap(), b.to_device(gpu).unwrap())
}

fn close(name: &str, gpu_out: &Tensor, cpu_out: &Tensor, tol: f64) {
    let err = norm_rel_err_on_cpu(gpu_out, cpu_out);
    assert!(err < tol, "{name}: relative error {err} ≥ {tol}");
}

/// Random documents over `t` tokens: long ones crossing kernel tiles, one-token pieces,
/// gaps.
fn documents(rng: &mut Rng, t: usize) -> PackedSequence {
    let mut indices = Vec::new();
    let mut at = 0;
    while at < t {
        let s = (at + usize::from(rng.below(5) == 0)).min(t);
        let len = [1, 2, 31, 64, 65, 200, 500][rng.below(7)];
        let e = (s + len).min(t);
        indices.push([s, e]);
        at = e;
    }
    PackedSequence::new(vec![0; t], &indices, None).unwrap()
}

#[test]
fn attention_forward_and_backward_match_cpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(5);
    for (h, kv, d, t) in [(8, 2, 64, 700), (4, 4, 128, 333), (16, 8, 64, 1024)] {
        let heads = Heads {
            n_head: h,
            n_kv_head: kv,
            head_dim: d,
        };
        let seq = documents(&mut rng, t);
        let segs = seq.segments();
        let (qc, qg) = pair(&mut rng, &[t, h * d], 1.0, &dev);
        let (kc, kg) = pair(&mut rng, &[t, kv * d], 1.0, &dev);
        let (vc, vg) = pair(&mut rng, &[t, kv * d], 1.0, &dev);
        let (dc, dg) = pair(&mut rng, &[t, h * d], 1.0, &dev);
        let on_cpu = AttentionInputs::new(&qc, &kc, &vc, &heads, segs);
        let on_gpu = AttentionInputs::new(&qg, &kg, &vg, &heads, segs);
        let want = attention::forward(on_cpu).unwrap();
        let got = attention::forward(on_gpu).unwrap();
        close(&format!("out H={h} KV={kv} D={d}"), &got, &want, 2e-2);
        let w = attention::backward(&dc, on_cpu).unwrap();
        let g = attention::backward(&dg, on_gpu).unwrap();
        close("dq", &g.0, &w.0, 3e-2);
        close("dk", &g.1, &w.1, 3e-2);
        close("dv", &g.2, &w.2, 3e-2);
    }
}

#[test]
fn rmsnorm_rope_silu_mul_match_cpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(6);
    let (t, c) = (77, 320);
    let (xc, xg) = pair(&mut rng, &[t, c], 2.0, &dev);
    let (wc, wg) = pair(&mut rng, &[c], 1.0, &dev);
    let (dc, dg) = pair(&mut rng, &[t, c], 1.0, &dev);
    let (yc, rc) = rmsnorm::forward(&xc, &wc, 1e-5).unwrap();
    let (yg, rg) = rmsnorm::forward(&xg, &wg, 1e-5).unwrap();
    close("rmsnorm y", &yg, &yc, 1e-2);
    let (dxc, dwc) = rmsnorm::backward(&dc, &xc, &wc, &rc).unwrap();
    let (dxg, dwg) = rmsnorm::backward(&dg, &xg, &wg, &rg).unwrap();
    close("rmsnorm dx", &dxg, &dxc, 2e-2);
    close("rmsnorm dw", &dwg, &dwc, 2e-2);

    let positions: Vec<u32> = (0..t as u32).map(|p| p * 37).collect();
    let rope_c = Rope::new(500_000.0, 64, &positions, DType::F32, &Device::Cpu).unwrap();
    let rope_g = Rope::new(500_000.0, 64, &positions, DType::BF16, &dev).unwrap();
    close(
        "rope fwd",
        &rope_g.forward(&xg).unwrap(),
        &rope_c.forward(&xc).unwrap(),
        1e-2,
    );
    close(
        "rope bwd",
        &rope_g.backward(&dg).unwrap(),
        &rope_c.backward(&dc).unwrap(),
        1e-2,
    );

    let (uc, ug) = pair(&mut rng, &[t, c], 2.0, &dev);
    close(
        "silu_mul",
        &silu_mul::forward(&xg, &ug).unwrap(),
        &silu_mul::forward(&xc, &uc).unwrap(),
        1e-2,
    );
    let (gc, ggc) = silu_mul::backward(&dc, &xc, &uc).unwrap();
    let (gg, ggg) = silu_mul::backward(&dg, &xg, &ug).unwrap();
    close("silu_mul dg", &gg, &gc, 2e-2);
    close("silu_mul du", &ggg, &ggc, 2e-2);
}

#[test]
fn cross_entropy_matches_cpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = Rng::new(8);
    let (b, v) = (53, 5003);
    let (zc, zg) = pair(&mut rng, &[b, v], 4.0, &dev);
    let targets: Vec<u32> = rng.tokens(b, v);
    let tc = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
    let tg = tc.to_device(&dev).unwrap();
    let (lc, dc) = cross_entropy::forward_backward(&zc, &tc, 1.0 / b as f64).unwrap();
    let (lg, dg) = cross_entropy::forward_backward(&zg, &tg, 1.0 / b as f64).unwrap();
    close("losses", &lg, &lc, 1e-3);
    close("dlogits", &dg, &dc, 2e-2);
}
