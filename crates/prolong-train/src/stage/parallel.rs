//! `[parallel]`: how a stage's work is split over its ranks.
//!
//! ```toml
//! [parallel]
//! shard = "full"      # "none" | "grad_op" | "full"
//! sequence = 8        # Ulysses sequence-parallel ranks per sequence
//! ```
//!
//! `shard` names what is split over the data-parallel ranks, with ProLong's `--fsdp`
//! numbering (PyTorch's `ShardingStrategy` values) beside it:
//!
//! | `shard` | ProLong `--fsdp` | PyTorch / DeepSpeed | split over the ranks |
//! |---|---|---|---|
//! | `"none"` (default) | 3 (`NO_SHARD`) | DDP | nothing: weights, gradients and Adam state replicated, gradients all-reduced |
//! | `"grad_op"` | 2 (`SHARD_GRAD_OP`) | ZeRO-2 | f32 master weights, gradients and both Adam moments; compute weights replicated |
//! | `"full"` | 1 (`FULL_SHARD`) | ZeRO-3 | the above plus the compute weights, gathered for a step's forward and backward and freed before the optimizer runs |
//!
//! ZeRO-1 (only the optimizer state sharded) is not a mode of its own: it is `grad_op`
//! without gradient sharding (`grad_op` accumulates a step's micro-batches into a whole
//! local gradient, as ZeRO-1 does, and reduce-scatters it once). What each mode does on
//! CPU ranks, and what is left, is in docs/distributed.md.
//!
//! `sequence` is Ulysses sequence parallelism: each packed sequence is split over this
//! many consecutive ranks (ProLong's `--seq_parallel_size`), and the data-parallel
//! degree is the world size over it; 1 (the default) is off.

use serde::{Deserialize, Serialize};

pub use crate::plan::ShardMode;

/// The `[parallel]` table. Room for the other splits of a step (sequence parallelism)
/// beside `shard`: every key has a default, so a recipe without the table trains as
/// before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSection {
    /// What is sharded over the data-parallel ranks.
    #[serde(default = "default_shard")]
    pub shard: ShardMode,
    /// Ulysses sequence-parallel ranks per sequence; 1: off.
    #[serde(default = "one")]
    pub sequence: usize,
}

fn one() -> usize {
    1
}

fn default_shard() -> ShardMode {
    ShardMode::None
}

impl Default for ParallelSection {
    fn default() -> Self {
        Self {
            shard: default_shard(),
            sequence: one(),
        }
    }
}
