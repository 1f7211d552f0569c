//! `repos`: a folder of code repositories → documents, one per repository
//! (see [`crate::repos`]).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::repos::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_REPO_BYTES,
    DEFAULT_SOURCE, ReposOptions,
};
use crate::task::{Task, TaskSpec};

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReposStep {
    /// Folder whose entries are the repositories.
    #[arg(value_name = "INPUT_DIR")]
    pub input: PathBuf,
    /// Output folder for the JSONL.zst part, stats and marker.
    #[arg(long, value_name = "OUT_DIR")]
    pub out: PathBuf,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_BYTES)]
    #[serde(default = "max_file_bytes")]
    pub max_file_bytes: u64,
    /// Skip a repository with more entries (files, links, submodules and
    /// folders) than this.
    #[arg(long, default_value_t = DEFAULT_MAX_FILES)]
    #[serde(default = "max_files")]
    pub max_files: u64,
    /// Skip a repository whose files read (past the path and size filters)
    /// hold more bytes than this.
    #[arg(long, default_value_t = DEFAULT_MAX_REPO_BYTES)]
    #[serde(default = "max_repo_bytes")]
    pub max_repo_bytes: u64,
    /// Skip a repository with a path of more components than this.
    #[arg(long, default_value_t = DEFAULT_MAX_DEPTH)]
    #[serde(default = "max_depth")]
    pub max_depth: u64,
    /// Keep one copy of files byte-identical across repositories: the first
    /// entry of INPUT_DIR in sorted order holding it keeps it, whatever
    /// --world-size.
    #[arg(long)]
    #[serde(default)]
    pub dedup_files: bool,
    /// The documents' `source` field.
    #[arg(long, default_value = DEFAULT_SOURCE)]
    #[serde(default = "source")]
    pub source: String,
}

fn max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}
fn max_files() -> u64 {
    DEFAULT_MAX_FILES
}
fn max_repo_bytes() -> u64 {
    DEFAULT_MAX_REPO_BYTES
}
fn max_depth() -> u64 {
    DEFAULT_MAX_DEPTH
}
fn source() -> String {
    DEFAULT_SOURCE.into()
}

impl ReposStep {
    pub fn options(&self) -> ReposOptions {
        ReposOptions {
            max_file_bytes: self.max_file_bytes,
            max_files: self.max_files,
            max_repo_bytes: self.max_repo_bytes,
            max_depth: self.max_depth,
            dedup_files: self.dedup_files,
            source: self.source.clone(),
        }
    }
}

impl Stage for ReposStep {
    fn task_done(&self, task: Task<'_>) -> bool {
        let TaskSpec { rank, world_size } = task.spec;
        crate::repos::task::marker_path(task.out, rank, world_size).is_file()
    }

    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let (input, task) = (cx.path(&self.input)?, cx.task);
        let options = self.options();
        let report = or_fail(crate::repos::run_task(
            &input,
            task.out,
            &options,
            task.spec.rank,
            task.spec.world_size,
            &mut |_| {},
        ))?;
        let stats = &report.stats;
        summary(report.skipped, || {
            format!("{} repositories → {} documents", stats.repos_in, stats.repos_out)
        })
    }

    /// Repos writes JSONL parts, no index to merge.
    fn finish(&self, _: &StepContext<'_>) -> StepResult<()> {
        Ok(())
    }
}
