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
//! * [`varlen`] — `cu_seqlens` / `max_seqlen` of a packed sequence for the varlen
//!   attention kernel;
//! * [`ulysses`] — Ulysses sequence parallelism: which tokens a rank holds, and the
//!   all-to-all layouts that trade a token shard of all heads for all tokens of a head
//!   shard (and back), so that each rank's attention sees whole documents;
//! * [`zero`] — ZeRO: the flat parameter / optimizer-state vector split into one
//!   shard per rank.
//!
//! The NCCL calls that move the bytes live behind the `cuda` feature in
//! `ops::cuda::nccl`; they take their counts and offsets from here.

pub mod group;
pub mod rank;
pub mod ulysses;
pub mod unique_id;
pub mod varlen;
pub mod zero;

use std::path::PathBuf;

/// Errors of the distributed setup.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A rank variable is present but not a number, or the numbers are inconsistent.
    #[error("environment variable {var}={value:?}: {msg}")]
    Env {
        var: &'static str,
        value: String,
        msg: String,
    },

    /// A world, head or sequence layout that cannot be split as asked.
    #[error("cannot split: {0}")]
    Layout(String),

    /// The unique-id file could not be written or read.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },

    /// Rank 0 could not publish the unique id.
    #[error("publishing the unique id: {0}")]
    Publish(prolong_mds::MdsError),

    /// An MPI call failed or cannot be made (feature `mpi`).
    #[error("MPI {op}: {msg}")]
    Mpi { op: &'static str, msg: String },

    /// An NCCL call failed (feature `cuda`).
    #[error("NCCL {op}: {msg}")]
    Nccl { op: &'static str, msg: String },

    /// Rank 0 did not publish the unique id in time.
    #[error("{path}: no unique id after {waited_ms} ms (is rank 0 running and the path shared?)")]
    Timeout { path: PathBuf, waited_ms: u128 },
}

// The message says the cause, so it is not also a `source()`.
impl From<prolong_mds::MdsError> for DistError {
    fn from(e: prolong_mds::MdsError) -> Self {
        Self::Publish(e)
    }
}

pub type DistResult<T> = std::result::Result<T, DistError>;
