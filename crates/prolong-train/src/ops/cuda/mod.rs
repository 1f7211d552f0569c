//! The CUDA path of the ops (feature `cuda`): fused kernels for bf16 tensors on an NVIDIA
//! GPU, and NCCL collectives for multi-GPU training.
//!
//! Each op file calls its fused kernel here first; a function returns `Ok(None)` when the
//! tensors are not bf16 tensors on a CUDA device, and the op then runs its candle-ops
//! path (which also works on the GPU, unfused). Kernels live in `kernels/*.cu`, compiled to
//! PTX by build.rs and loaded once per device on first use.

pub mod attention;
pub mod fused;
pub(crate) mod launch;
