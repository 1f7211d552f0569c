//! Why a task of the filter, sample, tokenize or chat stage stopped: one set
//! of reasons, since the four run the same way (read inputs, write MDS
//! through [`crate::task`], refuse a rerun that would mix settings). Bad
//! records are not errors: they are counted by reason in the stats.

use std::path::PathBuf;

use crate::chat::template::TemplateError;
use crate::documents::DocumentError;
use crate::filter::input::InputError;
use crate::task::Task;
use crate::tokenize::TokenizeError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// An MDS input dataset, shard or sample (filter, sample).
    #[error(transparent)]
    Input(#[from] InputError),
    /// A document file (tokenize, chat).
    #[error(transparent)]
    Documents(#[from] DocumentError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
    #[error(transparent)]
    Output(#[from] crate::task::OutputError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("invalid settings: {0}")]
    Settings(String),
    /// A completed task whose stats disagree with this run's request.
    #[error(
        "{out}: task {task} was completed with other settings or inputs ({reason}); \
         use a fresh output folder or remove that one"
    )]
    Changed {
        out: PathBuf,
        task: String,
        reason: String,
    },
    /// A `[NAME=]DIR@SHARE` source as given (sample).
    #[error("{arg:?}: {reason}")]
    Argument { arg: String, reason: String },
    /// A source folder that cannot serve (sample).
    #[error("source {name} ({path}): {reason}")]
    Source {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("no input files (expected .jsonl, .jsonl.gz, .jsonl.zst, .json, .txt) under {0:?}")]
    NoInputs(Vec<PathBuf>),
    #[error(
        "{path}: none of its {lines} lines has a \"messages\" or \"conversations\" array \
         (first line's keys: {keys}); is it a chat file?"
    )]
    NotChat {
        path: PathBuf,
        lines: u64,
        keys: String,
    },
}

impl StageError {
    /// Why `task`'s completed output cannot serve this run.
    pub fn changed(task: Task<'_>, reason: impl Into<String>) -> StageError {
        StageError::Changed {
            out: task.out.to_path_buf(),
            task: task.spec.name(),
            reason: reason.into(),
        }
    }
}
