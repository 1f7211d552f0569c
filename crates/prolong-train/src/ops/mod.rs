//! Differentiable ops: each file holds one op's forward and its explicit backward.
//!
//! This is the device seam of the crate: the ops are written with candle tensor ops only
//! (matmul, elementwise, reductions, gather/scatter), so the same code runs on any candle
//! device. The model never touches raw buffers; a fused CUDA kernel for an op later
//! replaces the body of that op's file and nothing else.
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
