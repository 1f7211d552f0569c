//! Typed errors of the model library.

use std::path::PathBuf;

/// Everything the model, its ops and its checkpoint I/O can fail with.
///
/// A message includes its cause and `source()` does not return it again, so a chain
/// printed with `{:#}` says each thing once (the convention of every crate here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch inside an op, device error, ...).
    #[error("tensor op: {0}")]
    Candle(candle_core::Error),

    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },

    /// Writing a file or folder (its error names the path).
    #[error(transparent)]
    Write(#[from] prolong_mds::MdsError),

    #[error("{path}: invalid JSON: {err}")]
    Json {
        path: PathBuf,
        err: serde_json::Error,
    },

    /// config.json parsed but describes a model we do not support or that is inconsistent.
    #[error("invalid model config: {0}")]
    Config(String),

    /// A parameter is absent from the checkpoint (or from a parameter set).
    #[error("missing tensor `{name}`")]
    MissingTensor { name: String },

    /// A parameter has the wrong shape.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },

    /// A safetensors file cannot be parsed, or a sharded index is malformed or names a
    /// tensor its shard lacks.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },

    /// A packed sequence is malformed (bad indices, mask length, ...).
    #[error("invalid packed sequence: {0}")]
    Sequence(String),

    /// A token id is not below the vocabulary size.
    #[error("token id {id} at position {pos} is out of range for vocabulary size {vocab}")]
    TokenOutOfRange { pos: usize, id: u32, vocab: usize },

    /// A collective of sequence parallelism failed, or its layout cannot be split.
    #[error("sequence parallel: {0}")]
    Dist(DistError),

    /// An op received inputs of inconsistent shapes.
    #[error("shape error in {op}: {msg}")]
    Shape { op: &'static str, msg: String },
}

/// `From` impls that wrap a cause in a variant whose message already says it.
///
/// thiserror's `#[from]` would also make the cause the variant's `source()`, and a
/// chain printed with `{:#}` would then say it twice; these wrap it and nothing more.
/// Each `Source => Variant` arm makes `Target::Variant(source.into())`, so a cause may
/// also be converted on its way in (a candle error into [`Error`] inside a
/// `TrainError::Model`).
macro_rules! from_cause {
    ($target:ty { $($source:ty => $variant:ident),+ $(,)? }) => {
        $(impl From<$source> for $target {
            // `into` is the identity where the cause is the variant's own type.
            #[allow(clippy::useless_conversion)]
            fn from(e: $source) -> Self {
                Self::$variant(e.into())
            }
        })+
    };
}
pub(crate) use from_cause;

from_cause!(Error {
    candle_core::Error => Candle,
    DistError => Dist,
});

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<prolong_packed::SequenceError> for Error {
    fn from(e: prolong_packed::SequenceError) -> Self {
        Error::Sequence(e.0)
    }
}

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

from_cause!(DistError {
    prolong_mds::MdsError => Publish,
});

pub type DistResult<T> = std::result::Result<T, DistError>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::DistError;
    use super::Error;

    /// The convention above: a variant that says its cause is not also its `source()`,
    /// so `{:#}` prints the cause once.
    #[test]
    fn a_cause_in_the_message_is_not_also_the_source() {
        let e = Error::from(DistError::Layout("3 heads over 2 ranks".into()));
        assert_eq!(
            e.to_string(),
            "sequence parallel: cannot split: 3 heads over 2 ranks"
        );
        assert!(e.source().is_none());
        let e = Error::from(candle_core::Error::Msg("bad".into()));
        assert!(e.source().is_none());
    }
}
