//! Reading one repository: a git repository's HEAD tree, or a plain folder.
//!
//! # Only the entry's own bytes
//!
//! Every byte a repository contributes (refs, objects, ignore rules, files)
//! comes from inside its entry of the input folder. Git repositories (a
//! folder holding a `.git` folder, or a bare repository: a folder with
//! `HEAD`, `objects/` and `refs/`) are read through libgit2's object database
//! alone, opened on the entry's `objects/` folder: HEAD and refs (loose, then
//! `packed-refs`) are resolved here, so no git config is ever read (the
//! repository's, the system's `/etc/gitconfig`, the user's `~/.gitconfig` or
//! XDG one: none changes what is read), and no environment variable (GIT_DIR,
//! GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES, GIT_COMMON_DIR,
//! ...) is looked at. A repository that points elsewhere is skipped as
//! "redirected_git_dir", never followed: a `.git` file (`gitdir: ...`, as in
//! worktrees and submodule checkouts) or a `.git` symbolic link, a
//! `commondir` file, an `objects/info/alternates` file naming another object
//! folder, or a symbolic link in `objects/` or `refs/` or as `HEAD` or
//! `packed-refs`.
//!
//! Git repositories are read from the tree of the commit HEAD points to:
//! nothing is checked out, no hook, filter (clean/smudge, LFS, eol) or
//! attribute runs, and the working tree and index are never looked at.
//! Gitlinks (submodules, mode 160000) and symbolic links (mode 120000) are
//! skipped. A missing blob (a partial clone, `--filter=blob:limit=...`) skips
//! that file as "missing_object"; any other error of libgit2 (a missing tree
//! or commit, a broken ref, a corrupt object) skips the whole repository as
//! "corrupt_git", with the error.
//!
//! Plain folders are walked here: `.gitignore` files inside the folder are
//! honoured (as if it were a git working tree), and nothing else: no
//! `.ignore`, no global git excludes, no ignore files of the folders above
//! it, so the result depends on the folder alone. Hidden files are kept (a
//! git repository's HEAD holds `.github/`, `.gitignore`, ... too); `.git`
//! entries are left out. Symbolic links are never followed: each one counts
//! as "symlink", wherever it points, and a `.gitignore` that is a link is not
//! read either. Files are opened and checked to still be the file that was
//! listed (same device and inode), and folders to still be the folder, so one
//! swapped for a link while the walk runs is "unreadable", never followed.
//!
//! # Limits
//!
//! A tree can name the same subtree many times: a few KB of git objects can
//! stand for 10^9 paths. The walk is streamed (one tree or folder listing per
//! level in memory, files read one at a time, in byte order of their paths)
//! and stops at the first limit a repository goes over, skipping it whole:
//! more than `max_files` entries (files, links, submodules and folders:
//! "too_many_files"), paths more than `max_depth` components deep
//! ("too_deep"), or more than `max_repo_bytes` bytes in the files read (those
//! past the path and size filters: "too_large"). A task's memory is bounded
//! by the largest document (about `max_repo_bytes`) and the largest single
//! tree or folder listing, whatever the tree.
//!
//! # `--dedup-files`
//!
//! A file's content is identified by its git blob id (SHA-1 of
//! `blob LEN\0` and the bytes: a git tree entry's id, computed from the bytes
//! for plain folders). The owner of a content is the first entry of the input
//! folder, in sorted order, that holds it in a file past the path filters
//! (whole-repository skips own nothing); only the owner keeps it (every copy
//! inside the owner is kept), other entries count it "duplicate". The owner
//! is a property of the input alone, whatever `--world-size`: [`survey`]
//! lists the candidate contents of one entry without reading git blobs, and
//! each task surveys its own entries and every earlier one (see the task
//! module).

mod collect;
mod entry;
mod folder;
mod git;
mod order;
mod read;
mod refs;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::Oid;
use serde::{Deserialize, Serialize};

use super::document::Document;
use super::filters::Skip;
use collect::Mode;
use entry::{skipped_entry, walk_entry};

/// Settings of the `repos` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReposOptions {
    /// Files larger than this are skipped ("too_large") without being read.
    pub max_file_bytes: u64,
    /// A repository with more entries (files, links, submodules and folders)
    /// is skipped ("too_many_files").
    pub max_files: u64,
    /// A repository whose files read (past the path and size filters) hold
    /// more bytes is skipped ("too_large").
    pub max_repo_bytes: u64,
    /// A repository with a path of more components is skipped ("too_deep").
    pub max_depth: u64,
    /// Keep one copy of files byte-identical across repositories: the first
    /// entry of the input folder holding it keeps it (see the module docs);
    /// copies inside one repository are all kept.
    pub dedup_files: bool,
    /// The documents' `source` field.
    pub source: String,
}

/// 1 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1_000_000;
/// One million entries: several times the largest source trees (Linux has
/// about 90,000 files, Chromium's checkout about 500,000).
pub const DEFAULT_MAX_FILES: u64 = 1_000_000;
/// 500 MB of files read per repository (a document's text is at most this).
pub const DEFAULT_MAX_REPO_BYTES: u64 = 500_000_000;
/// 100 path components: real trees stay far below (deep Java packages and
/// nested node_modules reach 30 to 50).
pub const DEFAULT_MAX_DEPTH: u64 = 100;
/// The default `source` of the documents.
pub const DEFAULT_SOURCE: &str = "repos";

impl Default for ReposOptions {
    fn default() -> Self {
        ReposOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
            max_repo_bytes: DEFAULT_MAX_REPO_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            dedup_files: false,
            source: DEFAULT_SOURCE.to_string(),
        }
    }
}

/// A file or repository that was skipped because something went wrong
/// (rather than by a filter): reported in the stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The entry of the input folder.
    pub repo: String,
    /// The file's path inside the repository; none for a whole repository.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    pub reason: String,
    pub error: String,
}

/// What reading one entry of the input folder gave.
#[derive(Debug, Clone)]
pub struct RepoResult {
    /// The entry's name (lossy UTF-8 when it is not UTF-8).
    pub name: String,
    /// The document, or why the whole entry was skipped.
    pub outcome: Result<Document, Skip>,
    /// Files skipped, by reason (also when the entry gave no document).
    pub skipped: BTreeMap<String, u64>,
    pub problems: Vec<Problem>,
}

/// For `--dedup-files`: the owner (index in the sorted input folder) of
/// each content seen by [`survey`], and the index of the entry being read.
#[derive(Debug, Clone, Copy)]
pub struct Dedup<'a> {
    pub owners: &'a HashMap<Oid, usize>,
    pub index: usize,
}

/// Reads the entry `path` of the input folder into one document; `dedup`
/// (with `--dedup-files`) tells which contents earlier entries own. Never
/// fails: whatever goes wrong is in the result.
pub fn read_repository(
    path: &Path,
    options: &ReposOptions,
    dedup: Option<Dedup<'_>>,
) -> RepoResult {
    let dedup = if options.dedup_files { dedup } else { None };
    match walk_entry(path, options, Mode::Read(dedup)) {
        Ok((acc, kind, commit)) => acc.finish(kind, commit),
        Err((name, (reason, error))) => skipped_entry(name, reason, error),
    }
}

/// The commit HEAD names in entry `path`, for a git entry whose git folder is
/// its own (see the module docs); `None` for plain folders and for entries
/// that would be skipped. A rerun of a completed task compares these, so a
/// repository that got new commits since is noticed (a plain folder's files
/// are not hashed for this: reading them all again would cost a whole run).
pub fn head_commit(path: &Path) -> Option<Oid> {
    let dot_git = path.join(".git");
    let git_dir = match std::fs::symlink_metadata(&dot_git) {
        Ok(meta) if meta.is_dir() => dot_git,
        Ok(_) => return None,
        Err(_) if entry::is_bare_layout(path) => path.to_path_buf(),
        Err(_) => return None,
    };
    refs::check_git_dir(&git_dir).ok()?;
    refs::resolve_head(&git_dir).ok().flatten()
}

/// The ids of the contents of entry `path` that it would keep but for
/// their content and `--dedup-files` (those past the path filters, present,
/// readable), in path order; empty when the whole entry is skipped. Git blobs
/// are not read (their id is in the tree); plain folders' files are.
pub fn survey(path: &Path, options: &ReposOptions) -> Vec<Oid> {
    match walk_entry(path, options, Mode::Survey) {
        Ok((acc, _, _)) => acc.keys,
        Err(_) => Vec::new(),
    }
}
