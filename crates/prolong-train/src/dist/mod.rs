//! Multi-GPU training, host side: everything about how work is split across ranks that
//! can be computed (and tested) without a GPU.
//!
//! * [`rank`] — who am I: rank, world size and local rank from torchrun's, MPI's or
//!   Slurm's environment;
//! * [`group`] — the process group: all-reduce, reduce-scatter, all-gather,
//!   all-to-all, broadcast and barrier, on one rank ([`group::Solo`]) or over MPI
//!   (feature `mpi`);
//! * [`unique_id`] — the NCCL unique id handed from rank 0 to the others through a file
//!   on a shared path;
//! * [`ulysses`] — Ulysses sequence parallelism: which tokens a rank holds, and the
//!   all-to-all layouts that trade a token shard of all heads for all tokens of a head
//!   shard (and back), so that each rank's attention sees whole documents;
//! * [`zero`] — ZeRO: the flat parameter / optimizer-state vector split into one
//!   shard per rank.
//!
//! * `nccl` (feature `cuda`) — NCCL's communicator and the calls that move the bytes
//!   between GPUs, with their counts and offsets from the modules above.
//!
//! `dist` sits above `ops`: it uses `ops::cuda`'s launch helpers for its device
//! buffers, and nothing in `ops` uses `dist`.

pub mod group;
#[cfg(feature = "cuda")]
pub mod nccl;
pub mod rank;
pub mod ulysses;
pub mod unique_id;
pub mod zero;

pub use crate::error::{DistError, DistResult};
