//! Errors of the data side: every variant names the file or stream it is about.

use std::path::PathBuf;

use prolong_packed::ProportionError;

/// Everything that can go wrong building a mixture or loading its sequences.
///
/// Each variant names the manifest, argument or stream path involved, and the
/// sample (its index within the stream's dataset) when one is.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading a file (the manifest) failed.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },

    /// The manifest is not valid TOML or not a list of `[[stream]]` tables.
    #[error("{path}: invalid mixture manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },

    /// A `path@proportion` argument could not be parsed.
    #[error("invalid mixture argument {arg:?}: {reason}")]
    Argument { arg: String, reason: String },

    /// The mixture has no streams.
    #[error("{origin}: the mixture has no streams")]
    NoStreams { origin: String },

    /// The stream at `path` has a negative, NaN or infinite proportion (the rule
    /// and its wording: [`prolong_packed::normalize_proportions`]).
    #[error("{path}: {err}")]
    Proportion { path: PathBuf, err: ProportionError },

    /// The proportions do not sum to a positive (finite) number.
    #[error("{err} (streams: {streams})")]
    ProportionSum {
        err: ProportionError,
        streams: String,
    },

    /// A stream path is not an MDS dataset folder (no readable index.json).
    #[error("{path}: not an MDS dataset: {reason}")]
    NotMds { path: PathBuf, reason: String },

    /// A stream's dataset could not be read.
    #[error("stream {path}: {err}")]
    Mds {
        path: PathBuf,
        err: prolong_mds::MdsError,
    },

    /// A stream has no samples but the allocation draws sequences from it.
    #[error("{path}: the dataset has no samples but {needed} sequences are drawn from it")]
    EmptyStream { path: PathBuf, needed: u64 },

    /// Holding out samples for evaluation would leave a stream nothing to train on.
    #[error(
        "{path}: the dataset has {samples} samples; holding out {held_out} for evaluation leaves none to train on"
    )]
    HoldOut {
        path: PathBuf,
        samples: usize,
        held_out: usize,
    },

    /// A sample's `input_ids` do not have the configured sequence length.
    #[error(
        "{path}: sample {sample}: input_ids has {len} tokens, the configured sequence length is {expected}"
    )]
    SequenceLength {
        path: PathBuf,
        sample: usize,
        len: usize,
        expected: usize,
    },

    /// A sample's columns are malformed (`indices`, `mask`, a missing `input_ids`, ...).
    #[error("{path}: sample {sample}: {reason}")]
    BadSample {
        path: PathBuf,
        sample: usize,
        reason: String,
    },

    /// A saved [`LoaderState`](super::LoaderState) does not fit this loader.
    #[error("cannot restore the loader state: {0}")]
    State(String),
}
