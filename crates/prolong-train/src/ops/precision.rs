//! Mixed precision: which op runs in which dtype, written once for every device.
//!
//! The model's compute dtype (`[model] dtype`) is what its weights and the activations
//! between ops are stored in. With bf16 (PyTorch autocast / FSDP `MixedPrecision` as users
//! know them):
//!
//! | op                                   | inputs / outputs | arithmetic inside              |
//! |--------------------------------------|------------------|--------------------------------|
//! | linear, embedding lookup             | bf16 / bf16      | matmul accumulators f32 (candle's CPU gemm widens bf16 to f32; cuBLAS accumulates in f32) |
//! | attention (scores, softmax, P·V)     | bf16 / bf16      | f32 (CPU: on widened copies; CUDA: the fused kernel) |
//! | RMSNorm (mean of squares, weight grad) | bf16 / bf16, `rstd` f32, weight grad f32 | f32 |
//! | SiLU·mul                              | bf16 / bf16      | f32                            |
//! | cross-entropy (log-sum-exp over V, loss) | bf16 logits / f32 losses, bf16 dlogits | f32 |
//! | embedding gradient, output-projection gradient summed over loss blocks | f32 | f32 |
//! | gradient sums over micro-batches, clipping norm | f32     | f32 (f64 for the norm's total) |
//! | AdamW: master weights, moments        | f32              | f32; the model gets the master cast to bf16 |
//!
//! Every reduction therefore adds in f32 whatever the compute dtype; only storage between
//! ops is bf16. An op applies the rule with [`widen`] on its inputs (f32 for bf16/f16, the
//! dtype itself for f32 and f64, so f64 gradient checks stay f64) and [`narrow`] on the
//! outputs that are activations. The CUDA kernels in `ops/cuda` implement the same table
//! (bf16 in and out, f32 accumulators).

use candle_core::{DType, Tensor};

use crate::error::Result;

/// The dtype reductions of an op on `dtype` inputs run in: f32 for 16-bit floats, the
/// dtype itself otherwise.
pub fn accum_dtype(dtype: DType) -> DType {
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}

/// `t` in its [`accum_dtype`] (the same tensor, not a copy, when that is its dtype).
pub fn widen(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(accum_dtype(t.dtype()))?)
}

/// An op's activation output back in the compute dtype `dtype`.
pub fn narrow(t: Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() == dtype {
        return Ok(t);
    }
    Ok(t.to_dtype(dtype)?)
}
