//! Helpers of the fused CPU f32 fast paths (cross-entropy, attention softmax, AdamW): raw access
//! to a contiguous CPU f32 tensor, row-parallel loops on candle's thread count, and a
//! vectorizable `exp`.

use candle_core::{DType, Device, Storage, Tensor};

use crate::error::Result;

/// Runs `f` on the contiguous f32 data of `t` when `t` is a contiguous f32 CPU tensor;
/// `Ok(None)` otherwise (the caller then takes its generic candle-ops path).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<Option<R>> {
    if !t.device().is_cpu() || t.dtype() != DType::F32 {
        return Ok(None);
    }
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Ok(None);
    };
    Ok(Some(f(&cpu.as_slice::<f32>()?[start..end])))
}

/// [`with_f32`] over several tensors: `f` gets their data in order when every one is a
/// contiguous f32 CPU tensor; `Ok(None)` otherwise.
pub(crate) fn with_f32s<R>(ts: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Result<Option<R>> {
    if ts
        .iter()
        .any(|t| !t.device().is_cpu() || t.dtype() != DType::F32)
    {
        return Ok(None);
    }
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(ts.len());
    for (storage, layout) in &guards {
        let (Storage::Cpu(cpu), Some((start, end))) = (&**storage, layout.contiguous_offsets())
        else {
            return Ok(None);
        };
        slices.push(&cpu.as_slice::<f32>()?[start..end]);
    }
    Ok(Some(f(&slices)))
}

/// A CPU f32 tensor of `shape` from `data`.
pub(crate) fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Calls `f(first_row, rows)` on consecutive chunks of whole rows (`row_len` each) of
/// `out`, in parallel on candle's CPU thread count (fewer for small work). Every row is
/// computed the same way whatever the split, so results do not depend on the thread count.
pub(crate) fn par_rows(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let row_len = row_len.max(1);
    let rows_per = rows_per_thread(out.len(), row_len);
    let f = &f;
    std::thread::scope(|s| {
        let mut chunks = out.chunks_mut(rows_per * row_len).enumerate().peekable();
        while let Some((i, chunk)) = chunks.next() {
            if chunks.peek().is_none() {
                f(i * rows_per, chunk); // the last chunk on this thread
            } else {
                s.spawn(move || f(i * rows_per, chunk));
            }
        }
    });
}

/// Rows of `row_len` (≥ 1) per thread for `len` elements: candle's CPU thread count,
/// fewer for small work (at least 32K elements a thread).
fn rows_per_thread(len: usize, row_len: usize) -> usize {
    let n_rows = len / row_len;
    let threads = candle_core::utils::get_num_threads()
        .min(n_rows)
        .min(len / (1 << 15))
        .max(1);
    n_rows.div_ceil(threads).max(1)
}

/// [`par_rows`] over two outputs split alike: `f(first_row, rows_a, rows_b)`.
pub(crate) fn par_rows2(
    a: &mut [f32],
    b: &mut [f32],
    row_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
) {
    let row_len = row_len.max(1);
    let rows_per = rows_per_thread(a.len(), row_len);
    let f = &f;
    std::thread::scope(|s| {
        let chunks = a
            .chunks_mut(rows_per * row_len)
            .zip(b.chunks_mut(rows_per * row_len));
        let mut chunks = chunks.enumerate().peekable();
        while let Some((i, (ca, cb))) = chunks.next() {
            if chunks.peek().is_none() {
                f(i * rows_per, ca, cb);
            } else {
                s.spawn(move || f(i * rows_per, ca, cb));
            }
        }
    });
}

/// `sigmoid(x)` from [`exp_nonpos`] (branch-free).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let e = exp_nonpos(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// `exp(x)` for `x ≤ 0` (Cephes expf polynomial, relative error < 5e-7; arguments below
/// −87 give `exp(−87)` ≈ 1.6e-38, negligible next to the `exp(0) = 1` of a row max).
/// Branch-free so that loops over it vectorize.
#[inline(always)]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    let x = if x < -87.0 { -87.0 } else { x }; // NaN stays NaN
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    let pow2 = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * pow2
}

pub(crate) const LANES: usize = 8;

/// Max of a non-empty row (8 lanes, so it vectorizes).
pub(crate) fn row_max(z: &[f32]) -> f32 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            mx[i] = if c[i] > mx[i] { c[i] } else { mx[i] };
        }
    }
    rest.iter()
        .copied()
        .chain(mx)
        .fold(f32::NEG_INFINITY, f32::max)
}

/// `out = exp(z − m)`; returns its sum.
pub(crate) fn exp_into(z: &[f32], m: f32, out: &mut [f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let n = z.len() / LANES * LANES;
    for (c, o) in z[..n]
        .chunks_exact(LANES)
        .zip(out[..n].chunks_exact_mut(LANES))
    {
        for i in 0..LANES {
            o[i] = exp_nonpos(c[i] - m);
            acc[i] += o[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, o) in z[n..].iter().zip(&mut out[n..]) {
        *o = exp_nonpos(*x - m);
        s += *o;
    }
    s
}

/// `Σ a ⊙ b` (8 lanes).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let n = a.len().min(b.len()) / LANES * LANES;
    for (x, y) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + a[n..].iter().zip(&b[n..]).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_nonpos_is_accurate() {
        let mut worst = 0f64;
        let mut x = 0f32;
        while x > -87.0 {
            let want = (x as f64).exp();
            let got = exp_nonpos(x) as f64;
            worst = worst.max((got - want).abs() / want);
            x -= 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst:e}");
    }
}
