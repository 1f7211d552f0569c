//! The accumulator of one repository's walk: the limits counted, the path
//! and content filters applied, and the document (or the survey) built.

use std::collections::BTreeMap;

use git2::Oid;

use super::super::document::{Document, RepoMetadata, TextBuilder};
use super::super::filters::{Skip, check_content, is_generated_name, is_good_path, is_vendored};
use super::{Dedup, Problem, RepoResult, ReposOptions};

/// How a folder holds its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Git,
    Bare,
    Folder,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Git => "git",
            Kind::Bare => "bare",
            Kind::Folder => "folder",
        }
    }
}

/// Reading for a document, or surveying the contents for `--dedup-files`.
pub(super) enum Mode<'a> {
    Read(Option<Dedup<'a>>),
    Survey,
}

/// Why a repository gave no document, with the error if one went wrong.
pub(super) type RepoSkip = (Skip, Option<String>);

/// Collects a document and the counts of one repository.
pub(super) struct Acc<'a> {
    pub(super) name: String,
    pub(super) options: &'a ReposOptions,
    pub(super) mode: Mode<'a>,
    pub(super) builder: TextBuilder,
    pub(super) skipped: BTreeMap<String, u64>,
    pub(super) problems: Vec<Problem>,
    /// Survey: the contents past the path filters.
    pub(super) keys: Vec<Oid>,
    /// Entries met so far (for `max_files`).
    pub(super) entries: u64,
    /// Bytes of the files read so far (for `max_repo_bytes`).
    pub(super) bytes_read: u64,
}

impl Acc<'_> {
    pub(super) fn skip(&mut self, reason: Skip) {
        *self.skipped.entry(reason.as_str().to_string()).or_default() += 1;
    }

    pub(super) fn problem(&mut self, reason: Skip, path: &str, error: String) {
        self.skip(reason);
        self.problems.push(Problem {
            repo: self.name.clone(),
            path: Some(path.to_string()),
            reason: reason.as_str().to_string(),
            error,
        });
    }

    /// Counts one entry of the tree, `depth` components deep, against the
    /// limits.
    pub(super) fn enter(&mut self, depth: usize) -> Result<(), RepoSkip> {
        self.entries += 1;
        self.check_entries(0)?;
        if depth as u64 > self.options.max_depth {
            return Err((Skip::TooDeep, None));
        }
        Ok(())
    }

    /// Whether `more` entries on top of those met go over `max_files`.
    pub(super) fn check_entries(&self, more: usize) -> Result<(), RepoSkip> {
        if self.entries.saturating_add(more as u64) > self.options.max_files {
            return Err((Skip::TooManyFiles, None));
        }
        Ok(())
    }

    /// Checks 1 and 3 of the filters: returns the path when it may be read.
    pub(super) fn check_path<'p>(&mut self, path: &'p [u8]) -> Option<&'p str> {
        let Some(path) = std::str::from_utf8(path).ok().filter(|p| is_good_path(p)) else {
            self.skip(Skip::BadPath);
            return None;
        };
        if is_vendored(path) {
            self.skip(Skip::Vendored);
            return None;
        }
        if is_generated_name(path) {
            self.skip(Skip::Generated);
            return None;
        }
        Some(path)
    }

    /// The size check of a file about to be read: `Ok(false)` when it is
    /// skipped as too large, an error when the repository goes over
    /// `max_repo_bytes`.
    pub(super) fn admit(&mut self, size: u64) -> Result<bool, RepoSkip> {
        if size > self.options.max_file_bytes {
            self.skip(Skip::TooLarge);
            return Ok(false);
        }
        self.bytes_read = self.bytes_read.saturating_add(size);
        if self.bytes_read > self.options.max_repo_bytes {
            return Err((Skip::TooLarge, None));
        }
        Ok(true)
    }

    pub(super) fn surveying(&self) -> bool {
        matches!(self.mode, Mode::Survey)
    }

    /// Content checks, dedup, then into the document (reading), or the
    /// content's id noted (surveying).
    pub(super) fn offer(&mut self, path: &str, key: Oid, bytes: &[u8]) {
        let dedup = match self.mode {
            Mode::Survey => return self.keys.push(key),
            Mode::Read(dedup) => dedup,
        };
        let text = match check_content(bytes) {
            Ok(text) => text,
            Err(reason) => return self.skip(reason),
        };
        if let Some(d) = dedup
            && d.owners.get(&key).is_some_and(|&owner| owner < d.index)
        {
            return self.skip(Skip::Duplicate);
        }
        self.builder.push(path, text);
    }

    pub(super) fn finish(self, kind: Kind, commit: Option<String>) -> RepoResult {
        let outcome = if self.builder.files() == 0 {
            Err(Skip::NoFiles)
        } else {
            let metadata = RepoMetadata {
                repo: self.name.clone(),
                kind: kind.as_str().to_string(),
                commit,
                files: self.builder.files(),
                bytes: self.builder.bytes(),
                skipped: self.skipped.clone(),
            };
            Ok(Document {
                id: self.name.clone(),
                text: self.builder.finish(),
                source: self.options.source.clone(),
                metadata,
            })
        };
        RepoResult {
            name: self.name,
            outcome,
            skipped: self.skipped,
            problems: self.problems,
        }
    }
}
