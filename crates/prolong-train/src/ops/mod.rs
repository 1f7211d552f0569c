//! Differentiable ops: each file holds one op's forward and its explicit backward.
//!
//! The model calls only these functions and never touches raw buffers. Each op picks its
//! implementation itself, in this order:
//!
//! 1. **fused CUDA kernel** (feature `cuda`; `ops::cuda`): rmsnorm, rope, silu_mul,
//!    cross-entropy's `forward_backward` and attention (forward and backward) first ask
//!    their launcher there, which returns `Ok(None)` unless the tensors are bf16 on a
//!    CUDA device (attention also needs a head dim with a kernel: 64 or 128). `ops::cuda` depends on
//!    nothing in `ops` (the head layout it shares is [`crate::config::Heads`]), so the
//!    dispatch runs one way only;
//! 2. **CPU f32 fast path** (`cpu`): rmsnorm, silu_mul, cross-entropy and the attention
//!    softmax (training and decode) run a hand-written row-parallel loop when their
//!    (widened) inputs are contiguous f32 CPU tensors;
//! 3. **candle tensor ops** otherwise (matmul, elementwise, reductions, gather/scatter):
//!    any device and dtype, and the only path of linear and embedding (a matmul and a
//!    gather, which candle already runs well everywhere).
//!
//! bf16 inputs are widened to f32 around the arithmetic as [`precision`] tabulates, on
//! every path. The optimizer (crate::optim) dispatches its AdamW update the same way: the
//! kernel in `ops::cuda::fused` for f32 state on a GPU, the CPU fast path, candle ops.
//!
//! Conventions: activations are row-major `[T, features]` (one row per token); weights use
//! the PyTorch/HF layout `[out, in]`. Every `backward` takes the gradient of the op's output
//! and returns the gradients of its inputs (and parameters), in the order of `forward`'s
//! arguments.

pub mod attention;
pub mod attention_decode;
pub(crate) mod cpu;
pub mod cross_entropy;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod embedding;
pub mod linear;
pub mod precision;
pub mod rmsnorm;
pub mod rope;
pub mod silu_mul;

#[cfg(test)]
mod test_values {
    //! Inputs and comparisons shared by the ops' unit tests.

    use candle_core::{DType, Device, Tensor};

    /// Deterministic pseudo-random f64 values in `[-1.5, 1.5)` of `shape`; `seed` shifts them.
    pub fn values(shape: &[usize], seed: usize) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f64 / 1013.0 - 0.5) * 3.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Largest absolute difference of two tensors of one shape (any float dtypes), in f64.
    pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }
}
