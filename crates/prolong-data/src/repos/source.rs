//! Reading one repository: a git repository's HEAD tree, or a plain folder.
//!
//! Git repositories (a folder holding `.git`, or a bare repository: a folder
//! with `HEAD`, `objects/` and `refs/`) are read through libgit2 from the
//! tree of the commit HEAD points to: nothing is checked out, no hook, filter
//! (clean/smudge, LFS, eol) or attribute runs, and the working tree and index
//! are never looked at. Gitlinks (submodules, mode 160000) and symbolic links
//! (mode 120000) are skipped. Any error of libgit2 (a missing object, a
//! broken ref) skips the whole repository as "corrupt_git", with the error.
//!
//! Plain folders are walked with the `ignore` crate: `.gitignore` files
//! inside the folder are honoured (as if it were a git working tree), and
//! nothing else: no `.ignore`, no global git excludes, no ignore files of the
//! folders above it, so the result depends on the folder alone. Hidden files
//! are kept (a git repository's HEAD holds `.github/`, `.gitignore`, ... too);
//! `.git` entries are left out. Symbolic links are never followed: each one
//! counts as "symlink", wherever it points. Files are opened and checked to
//! still be the file that was listed (same device and inode), so a file
//! swapped for a link while the walk runs is "unreadable", never followed.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, RepositoryOpenFlags};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use super::document::{Document, RepoMetadata, TextBuilder};
use super::filters::{Skip, check_content, is_generated_name, is_good_path, is_vendored};

/// Settings of the `repos` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReposOptions {
    /// Files larger than this are skipped ("too_large") without being read.
    pub max_file_bytes: u64,
    /// Keep one copy of files byte-identical across repositories (xxh3-128
    /// of the content): the first repository, in sorted order within a task,
    /// keeps it; copies inside one repository are all kept.
    pub dedup_files: bool,
    /// The documents' `source` field.
    pub source: String,
}

/// 1 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1_000_000;
/// The default `source` of the documents.
pub const DEFAULT_SOURCE: &str = "repos";

impl Default for ReposOptions {
    fn default() -> Self {
        ReposOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
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
    /// xxh3-128 of the files kept (for `--dedup-files`).
    pub kept_hashes: Vec<u128>,
}

/// How a folder holds its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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

/// The bytes a path sorts by.
#[cfg(unix)]
fn os_bytes(s: &OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// Collects a document and the counts of one repository.
struct Acc<'a> {
    name: String,
    options: &'a ReposOptions,
    seen: Option<&'a HashSet<u128>>,
    builder: TextBuilder,
    skipped: BTreeMap<String, u64>,
    problems: Vec<Problem>,
    kept_hashes: Vec<u128>,
}

impl Acc<'_> {
    fn skip(&mut self, reason: Skip) {
        *self.skipped.entry(reason.as_str().to_string()).or_default() += 1;
    }

    fn problem(&mut self, reason: Skip, path: &str, error: String) {
        self.skip(reason);
        self.problems.push(Problem {
            repo: self.name.clone(),
            path: Some(path.to_string()),
            reason: reason.as_str().to_string(),
            error,
        });
    }

    /// Checks 1 and 3 of the filters: returns the path when it may be read.
    fn check_path<'p>(&mut self, path: &'p [u8]) -> Option<&'p str> {
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

    fn too_large(&mut self, size: u64) -> bool {
        if size > self.options.max_file_bytes {
            self.skip(Skip::TooLarge);
            return true;
        }
        false
    }

    /// Content checks, dedup, then into the document.
    fn offer(&mut self, path: &str, bytes: &[u8]) {
        let text = match check_content(bytes) {
            Ok(text) => text,
            Err(reason) => return self.skip(reason),
        };
        let hash = xxh3_128(bytes);
        if self.seen.is_some_and(|seen| seen.contains(&hash)) {
            return self.skip(Skip::Duplicate);
        }
        if self.options.dedup_files {
            self.kept_hashes.push(hash);
        }
        self.builder.push(path, text);
    }

    fn finish(self, kind: Kind, commit: Option<String>) -> RepoResult {
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
            kept_hashes: self.kept_hashes,
        }
    }
}

fn skipped_entry(name: String, reason: Skip, error: Option<String>) -> RepoResult {
    let problems = error
        .map(|error| Problem {
            repo: name.clone(),
            path: None,
            reason: reason.as_str().to_string(),
            error,
        })
        .into_iter()
        .collect();
    RepoResult {
        name,
        outcome: Err(reason),
        skipped: BTreeMap::new(),
        problems,
        kept_hashes: Vec::new(),
    }
}

fn is_bare_layout(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// Reads the entry `path` of the input folder into one document. `seen`
/// holds the hashes of files kept by earlier repositories (`--dedup-files`).
/// Never fails: whatever goes wrong is in the result.
pub fn read_repository(
    path: &Path,
    options: &ReposOptions,
    seen: Option<&HashSet<u128>>,
) -> RepoResult {
    let raw_name = path.file_name().unwrap_or(path.as_os_str());
    let lossy = raw_name.to_string_lossy().into_owned();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return skipped_entry(lossy, Skip::UnreadableFolder, Some(e.to_string())),
    };
    if meta.file_type().is_symlink() {
        return skipped_entry(lossy, Skip::Symlink, None);
    }
    if !meta.is_dir() {
        return skipped_entry(lossy, Skip::NotADirectory, None);
    }
    let Some(name) = raw_name.to_str().map(str::to_string) else {
        return skipped_entry(lossy, Skip::BadName, None);
    };
    let kind = if std::fs::symlink_metadata(path.join(".git")).is_ok() {
        Kind::Git
    } else if is_bare_layout(path) {
        Kind::Bare
    } else {
        match std::fs::read_dir(path) {
            Err(e) => {
                return skipped_entry(name, Skip::UnreadableFolder, Some(e.to_string()));
            }
            Ok(mut entries) => {
                if entries.next().is_none() {
                    return skipped_entry(name, Skip::EmptyFolder, None);
                }
            }
        }
        Kind::Folder
    };
    let acc = Acc {
        name,
        options,
        seen: if options.dedup_files { seen } else { None },
        builder: TextBuilder::new(),
        skipped: BTreeMap::new(),
        problems: Vec::new(),
        kept_hashes: Vec::new(),
    };
    match kind {
        Kind::Folder => read_folder(path, acc),
        Kind::Git | Kind::Bare => {
            let name = acc.name.clone();
            match read_git(path, acc) {
                Ok(result) => result,
                Err((reason, error)) => skipped_entry(name, reason, Some(error)),
            }
        }
    }
}

const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

enum GitItem {
    Blob(Oid),
    Skipped(Skip),
}

fn read_git(path: &Path, mut acc: Acc<'_>) -> Result<RepoResult, (Skip, String)> {
    let corrupt = |e: git2::Error| (Skip::CorruptGit, e.message().to_string());
    let repo = Repository::open_ext(
        path,
        RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&OsStr>(),
    )
    .map_err(corrupt)?;
    let kind = if repo.is_bare() {
        Kind::Bare
    } else {
        Kind::Git
    };
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
            return Err((Skip::NoCommits, e.message().to_string()));
        }
        Err(e) => return Err(corrupt(e)),
    };
    let commit = head.peel_to_commit().map_err(corrupt)?;
    let tree = commit.tree().map_err(corrupt)?;

    // Every entry, by full path; trees are walked with a stack (no recursion
    // limit to hit on deep trees).
    let mut items: Vec<(Vec<u8>, GitItem)> = Vec::new();
    let mut stack = vec![(Vec::new(), tree)];
    while let Some((prefix, tree)) = stack.pop() {
        for entry in tree.iter() {
            let mut full = prefix.clone();
            if !full.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(entry.name_bytes());
            match entry.filemode() {
                MODE_TREE => stack.push((full, repo.find_tree(entry.id()).map_err(corrupt)?)),
                MODE_LINK => items.push((full, GitItem::Skipped(Skip::Symlink))),
                MODE_GITLINK => items.push((full, GitItem::Skipped(Skip::Submodule))),
                _ if entry.kind() == Some(ObjectType::Blob) => {
                    items.push((full, GitItem::Blob(entry.id())))
                }
                _ => items.push((full, GitItem::Skipped(Skip::NotRegular))),
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));

    let odb = repo.odb().map_err(corrupt)?;
    for (full, item) in &items {
        let oid = match item {
            GitItem::Skipped(reason) => {
                acc.skip(*reason);
                continue;
            }
            GitItem::Blob(oid) => *oid,
        };
        let Some(path) = acc.check_path(full) else {
            continue;
        };
        let (size, _) = odb.read_header(oid).map_err(corrupt)?;
        if acc.too_large(size as u64) {
            continue;
        }
        let blob = repo.find_blob(oid).map_err(corrupt)?;
        acc.offer(path, blob.content());
    }
    Ok(acc.finish(kind, Some(commit.id().to_string())))
}

/// The innermost path and I/O error of a walk error.
fn walk_error_parts(err: &ignore::Error) -> (Option<&Path>, Option<&std::io::Error>) {
    match err {
        ignore::Error::WithPath { path, err } => {
            let (inner, io) = walk_error_parts(err);
            (inner.or(Some(path.as_path())), io)
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error_parts(err)
        }
        ignore::Error::Io(e) => (None, Some(e)),
        _ => (None, None),
    }
}

enum FsItem {
    File(PathBuf),
    Skipped(Skip),
    Failed(Skip, String),
}

fn read_folder(root: &Path, mut acc: Acc<'_>) -> RepoResult {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(true)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git");
    let relative =
        |p: &Path| -> Vec<u8> { os_bytes(p.strip_prefix(root).unwrap_or(p).as_os_str()) };

    let mut items: Vec<(Vec<u8>, FsItem)> = Vec::new();
    for result in builder.build() {
        match result {
            Ok(entry) => {
                if entry.depth() == 0 {
                    continue;
                }
                let rel = relative(entry.path());
                match entry.file_type() {
                    Some(t) if t.is_dir() => {}
                    Some(t) if t.is_symlink() => items.push((rel, FsItem::Skipped(Skip::Symlink))),
                    Some(t) if t.is_file() => {
                        items.push((rel, FsItem::File(entry.path().to_path_buf())))
                    }
                    _ => items.push((rel, FsItem::Skipped(Skip::NotRegular))),
                }
            }
            Err(err) => {
                let (path, io) = walk_error_parts(&err);
                let reason = match io.map(std::io::Error::kind) {
                    Some(std::io::ErrorKind::NotFound) => Skip::Vanished,
                    _ => Skip::Unreadable,
                };
                let rel = path.map(relative).unwrap_or_default();
                let message = io.map(|e| e.to_string()).unwrap_or_else(|| err.to_string());
                items.push((rel, FsItem::Failed(reason, message)));
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));

    for (rel, item) in &items {
        let file = match item {
            FsItem::Skipped(reason) => {
                acc.skip(*reason);
                continue;
            }
            FsItem::Failed(reason, error) => {
                acc.problem(*reason, &String::from_utf8_lossy(rel), error.clone());
                continue;
            }
            FsItem::File(file) => file,
        };
        let Some(path) = acc.check_path(rel) else {
            continue;
        };
        let path = path.to_string();
        match read_file(file, acc.options.max_file_bytes) {
            Ok(Some(bytes)) => acc.offer(&path, &bytes),
            Ok(None) => acc.skip(Skip::TooLarge),
            Err((reason, error)) => acc.problem(reason, &path, error),
        }
    }
    acc.finish(Kind::Folder, None)
}

/// Reads a regular file that was listed by the walk: `None` when larger than
/// `max` bytes (not read).
fn read_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>, (Skip, String)> {
    let io = |e: std::io::Error| {
        let reason = if e.kind() == std::io::ErrorKind::NotFound {
            Skip::Vanished
        } else {
            Skip::Unreadable
        };
        (reason, e.to_string())
    };
    let listed = std::fs::symlink_metadata(path).map_err(io)?;
    if !listed.is_file() {
        // Swapped for a link, a folder or a fifo since the walk listed it.
        return Err((Skip::Unreadable, "no longer a regular file".to_string()));
    }
    if listed.len() > max {
        return Ok(None);
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (opened.dev(), opened.ino()) != (listed.dev(), listed.ino()) {
            return Err((Skip::Unreadable, "replaced while being read".to_string()));
        }
    }
    if !opened.is_file() {
        return Err((Skip::Unreadable, "no longer a regular file".to_string()));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        // Grew while being read.
        return Ok(None);
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reports_vanished_and_non_regular() {
        let tmp = std::env::temp_dir().join(format!("repos-read-file-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let gone = tmp.join("gone.txt");
        let err = read_file(&gone, 100).unwrap_err();
        assert_eq!(err.0, Skip::Vanished);
        let err = read_file(&tmp, 100).unwrap_err();
        assert_eq!(err.0, Skip::Unreadable);
        let file = tmp.join("f.txt");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_file(&file, 4).unwrap(), None);
        assert_eq!(read_file(&file, 5).unwrap(), Some(b"12345".to_vec()));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
