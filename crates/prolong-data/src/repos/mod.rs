//! The `repos` stage: a folder of code repositories in, one document per
//! repository out (JSONL.zst), as ProLong's "thestackv1_concat_by_repo" data:
//! every kept file of a repository concatenated, in sorted path order, each
//! preceded by its path.
//!
//! - [`source`]: what is read (a git repository's HEAD tree, or a plain
//!   folder), [`read_repository`];
//! - [`filters`]: which files are kept, and the skip reasons ([`Skip`]);
//! - [`document`]: the text format (`==> PATH <==` header lines, files
//!   separated by a blank line) and the JSONL record ([`Document`]);
//! - [`task`]: `--rank/--world-size` tasks, output files, stats and markers
//!   ([`run_task`]).
//!
//! Each output line is a JSON object (schemas/document.schema.json):
//!
//! ```json
//! {"id": "NAME", "text": "==> a.rs <==\n...", "source": "repos",
//!  "metadata": {"repo": "NAME", "kind": "git", "commit": "HEX", "files": 12,
//!               "bytes": 34567, "skipped": {"binary": 2, "vendored": 40}}}
//! ```

pub mod document;
mod error;
pub mod filters;
pub mod source;
pub mod task;

pub use document::{Document, RepoMetadata, TextBuilder, is_header_like, render};
pub use error::ReposError;
pub use filters::Skip;
pub use source::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_REPO_BYTES,
    DEFAULT_SOURCE, Dedup, Problem, RepoResult, ReposOptions, read_repository, survey,
};
pub use task::{
    Progress, TaskReport, TaskStats, ZSTD_LEVEL, list_inputs, marker_path, part_name, part_path,
    run_task, stats_path,
};
