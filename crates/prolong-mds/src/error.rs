use std::path::PathBuf;

/// Everything that can go wrong reading or writing MDS data. Every variant that
/// comes from a file names it, and the sample when one is involved.
#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    // The io error is part of the message, not a `source`, so that error
    // chains print it once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: not an MDS index: {reason}")]
    BadIndex { path: PathBuf, reason: String },
    #[error("{path}: bad shard: {reason}")]
    BadShard { path: PathBuf, reason: String },
    #[error("{path}: sample {sample}: {reason}")]
    BadSample {
        path: PathBuf,
        sample: usize,
        reason: String,
    },
    #[error("{path}: {algo} hash mismatch: index.json says {expected}, file has {actual}")]
    HashMismatch {
        path: PathBuf,
        algo: String,
        expected: String,
        actual: String,
    },
    #[error("unknown encoding {0:?}")]
    UnknownEncoding(String),
    #[error("unsupported compression {0:?} (supported: zstd, zstd:1..zstd:22)")]
    UnknownCompression(String),
    #[error("unknown hash algorithm {0:?}")]
    UnknownHash(String),
    #[error("invalid writer settings: {0}")]
    InvalidSettings(String),
    #[error("column {column:?}: {reason}")]
    BadValue { column: String, reason: String },
    #[error("sample index {index} is out of range (dataset has {len} samples)")]
    OutOfRange { index: usize, len: usize },
    #[error("no column {0:?}")]
    NoColumn(String),
}

pub type Result<T, E = MdsError> = std::result::Result<T, E>;

impl MdsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MdsError::Io {
            path: path.into(),
            err: source,
        }
    }
}
