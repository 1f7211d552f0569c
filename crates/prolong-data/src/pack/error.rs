use std::path::PathBuf;

use prolong_mds::MdsError;

/// Everything that can go wrong packing. Errors that come from an input name
/// its file (and the sample, when one is involved); nothing panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("invalid pack settings: {0}")]
    Settings(String),
    /// A bad input file or sample (named, with the sample's position).
    #[error(transparent)]
    Input(#[from] crate::filter::input::InputError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Output(#[from] crate::task::OutputError),
    #[error(transparent)]
    Mds(#[from] MdsError),
}

impl PackError {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        PackError::Io {
            path: path.into(),
            err,
        }
    }

    pub(crate) fn settings(reason: impl Into<String>) -> Self {
        PackError::Settings(reason.into())
    }
}
