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
mod test_values;
