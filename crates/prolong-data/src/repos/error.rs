//! Errors that stop a `repos` task. Problems with one repository or one file
//! are not errors: they are counted by reason and reported in the stats.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReposError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("bad settings: {0}")]
    Settings(String),
    #[error(
        "{out}: task {task} was completed with other settings or inputs ({what}); \
         use a fresh output folder or remove that one"
    )]
    Changed {
        out: PathBuf,
        task: String,
        what: String,
    },
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
}

impl ReposError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ReposError {
        ReposError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
