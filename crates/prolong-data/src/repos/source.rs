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

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use git2::{ErrorCode, ObjectType, Odb, Oid, Repository};
use serde::{Deserialize, Serialize};

use super::document::{Document, RepoMetadata, TextBuilder};
use super::filters::{Skip, check_content, is_generated_name, is_good_path, is_vendored};

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

/// Reading for a document, or surveying the contents for `--dedup-files`.
enum Mode<'a> {
    Read(Option<Dedup<'a>>),
    Survey,
}

/// Why a repository gave no document, with the error if one went wrong.
type RepoSkip = (Skip, Option<String>);

/// Collects a document and the counts of one repository.
struct Acc<'a> {
    name: String,
    options: &'a ReposOptions,
    mode: Mode<'a>,
    builder: TextBuilder,
    skipped: BTreeMap<String, u64>,
    problems: Vec<Problem>,
    /// Survey: the contents past the path filters.
    keys: Vec<Oid>,
    /// Entries met so far (for `max_files`).
    entries: u64,
    /// Bytes of the files read so far (for `max_repo_bytes`).
    bytes_read: u64,
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

    /// Counts one entry of the tree, `depth` components deep, against the
    /// limits.
    fn enter(&mut self, depth: usize) -> Result<(), RepoSkip> {
        self.entries += 1;
        self.check_entries(0)?;
        if depth as u64 > self.options.max_depth {
            return Err((Skip::TooDeep, None));
        }
        Ok(())
    }

    /// Whether `more` entries on top of those met go over `max_files`.
    fn check_entries(&self, more: usize) -> Result<(), RepoSkip> {
        if self.entries.saturating_add(more as u64) > self.options.max_files {
            return Err((Skip::TooManyFiles, None));
        }
        Ok(())
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

    /// The size check of a file about to be read: `Ok(false)` when it is
    /// skipped as too large, an error when the repository goes over
    /// `max_repo_bytes`.
    fn admit(&mut self, size: u64) -> Result<bool, RepoSkip> {
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

    fn surveying(&self) -> bool {
        matches!(self.mode, Mode::Survey)
    }

    /// Content checks, dedup, then into the document (reading), or the
    /// content's id noted (surveying).
    fn offer(&mut self, path: &str, key: Oid, bytes: &[u8]) {
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
    }
}

fn is_bare_layout(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
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

/// An entry walked, or its name and why it was skipped whole.
type Walked<'a> = Result<(Acc<'a>, Kind, Option<String>), (String, RepoSkip)>;

fn walk_entry<'a>(path: &Path, options: &'a ReposOptions, mode: Mode<'a>) -> Walked<'a> {
    let raw_name = path.file_name().unwrap_or(path.as_os_str());
    let lossy = raw_name.to_string_lossy().into_owned();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Err((lossy, (Skip::UnreadableFolder, Some(e.to_string())))),
    };
    if meta.file_type().is_symlink() {
        return Err((lossy, (Skip::Symlink, None)));
    }
    if !meta.is_dir() {
        return Err((lossy, (Skip::NotADirectory, None)));
    }
    let Some(name) = raw_name.to_str().map(str::to_string) else {
        return Err((lossy, (Skip::BadName, None)));
    };
    let dot_git = path.join(".git");
    let kind = if let Ok(meta) = std::fs::symlink_metadata(&dot_git) {
        if !meta.is_dir() {
            let what = if meta.file_type().is_symlink() {
                ".git is a symbolic link"
            } else {
                ".git is a file (gitdir: link)"
            };
            return Err((name, (Skip::RedirectedGitDir, Some(what.to_string()))));
        }
        Kind::Git
    } else if is_bare_layout(path) {
        Kind::Bare
    } else {
        match std::fs::read_dir(path) {
            Err(e) => return Err((name, (Skip::UnreadableFolder, Some(e.to_string())))),
            Ok(mut entries) => {
                if entries.next().is_none() {
                    return Err((name, (Skip::EmptyFolder, None)));
                }
            }
        }
        Kind::Folder
    };
    let mut acc = Acc {
        name,
        options,
        mode,
        builder: TextBuilder::new(),
        skipped: BTreeMap::new(),
        problems: Vec::new(),
        keys: Vec::new(),
        entries: 0,
        bytes_read: 0,
    };
    let walked = match kind {
        Kind::Folder => walk_folder(path, &mut acc).map(|()| None),
        Kind::Git => walk_git(&dot_git, &mut acc).map(Some),
        Kind::Bare => walk_git(path, &mut acc).map(Some),
    };
    match walked {
        Ok(commit) => Ok((acc, kind, commit)),
        Err(skip) => Err((acc.name, skip)),
    }
}

const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// Orders the names of one tree or folder so that a depth-first walk meets
/// paths in byte order: a folder sorts as its name followed by `/` (git's
/// own tree order).
fn tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let slash = |dir: bool| dir.then_some(&b'/');
    a.iter()
        .chain(slash(a_dir))
        .cmp(b.iter().chain(slash(b_dir)))
}

/// `prefix/name`.
fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
    full.extend_from_slice(prefix);
    if !full.is_empty() {
        full.push(b'/');
    }
    full.extend_from_slice(name);
    full
}

/// Longest HEAD, loose ref or `objects/info/alternates` file read.
const MAX_REF_FILE_BYTES: u64 = 64 * 1024;
/// Symbolic refs followed from HEAD at most (as git).
const MAX_SYMREF_DEPTH: usize = 5;

fn redirected(what: impl Into<String>) -> RepoSkip {
    (Skip::RedirectedGitDir, Some(what.into()))
}

fn corrupt(what: impl Into<String>) -> RepoSkip {
    (Skip::CorruptGit, Some(what.into()))
}

fn git_corrupt(e: git2::Error) -> RepoSkip {
    corrupt(e.message().to_string())
}

/// Refuses a git folder that takes anything from outside itself (see the
/// module docs).
fn check_git_dir(git_dir: &Path) -> Result<(), RepoSkip> {
    if std::fs::symlink_metadata(git_dir.join("commondir")).is_ok() {
        return Err(redirected("a commondir file"));
    }
    for name in ["HEAD", "packed-refs", "objects", "refs"] {
        if std::fs::symlink_metadata(git_dir.join(name)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(redirected(format!("{name} is a symbolic link")));
        }
    }
    // Objects are in objects/XX/ and objects/pack/, refs at any depth.
    for (folder, depth) in [("objects", 2), ("refs", usize::MAX)] {
        let walk = walkdir::WalkDir::new(git_dir.join(folder))
            .follow_links(false)
            .follow_root_links(false)
            .max_depth(depth);
        for entry in walk {
            match entry {
                Ok(entry) if entry.file_type().is_symlink() => {
                    let rel = entry.path().strip_prefix(git_dir).unwrap_or(entry.path());
                    return Err(redirected(format!("{} is a symbolic link", rel.display())));
                }
                Ok(_) => {}
                Err(e) if e.depth() == 0 => return Err(corrupt(format!("{folder}: {e}"))),
                Err(e) => return Err(corrupt(e.to_string())),
            }
        }
    }
    let alternates = git_dir.join("objects/info/alternates");
    if std::fs::symlink_metadata(&alternates).is_ok() {
        let text = read_small(&alternates).map_err(corrupt)?;
        // libgit2 follows every line but blank ones and comments.
        if text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            return Err(redirected(
                "objects/info/alternates names another object folder",
            ));
        }
    }
    Ok(())
}

/// A small regular file of a git folder (HEAD, a ref), as text.
fn read_small(path: &Path) -> Result<String, String> {
    let show = |e: String| format!("{}: {e}", path.display());
    let bytes = match read_file(path, MAX_REF_FILE_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(show("too large".to_string())),
        Err((_, e)) => return Err(show(e)),
    };
    String::from_utf8(bytes).map_err(|_| show("not UTF-8".to_string()))
}

/// What HEAD points to: a commit (or tag) id, or `None` when its branch has
/// no commit yet.
fn resolve_head(git_dir: &Path) -> Result<Option<Oid>, RepoSkip> {
    let mut target = read_small(&git_dir.join("HEAD")).map_err(corrupt)?;
    for _ in 0..=MAX_SYMREF_DEPTH {
        let value = target.trim_end_matches(['\n', '\r']);
        let Some(name) = value.strip_prefix("ref:") else {
            return Oid::from_str(value.trim())
                .map(Some)
                .map_err(|_| corrupt(format!("not a ref or object id: {value:?}")));
        };
        let name = name.trim();
        if !name.starts_with("refs/") || !git2::Reference::is_valid_name(name) {
            return Err(corrupt(format!("bad ref name {name:?}")));
        }
        let loose = git_dir.join(name);
        match std::fs::symlink_metadata(&loose) {
            Ok(meta) if meta.is_file() => target = read_small(&loose).map_err(corrupt)?,
            _ => return packed_ref(git_dir, name),
        }
    }
    Err(corrupt(format!(
        "more than {MAX_SYMREF_DEPTH} symbolic refs from HEAD"
    )))
}

/// The id of ref `name` in `packed-refs`; `None` when it is not there.
fn packed_ref(git_dir: &Path, name: &str) -> Result<Option<Oid>, RepoSkip> {
    let path = git_dir.join("packed-refs");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(corrupt(format!("{}: {e}", path.display()))),
    };
    // Streamed line by line (packed-refs of big repositories run to MBs),
    // each line bounded: a ref line is an id, a space and a name.
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_REF_FILE_BYTES)
            .read_until(b'\n', &mut line)
            .map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        if read == 0 {
            return Ok(None);
        }
        if read as u64 == MAX_REF_FILE_BYTES && line.last() != Some(&b'\n') {
            return Err(corrupt(format!("{}: a line over 64 KB", path.display())));
        }
        let line = String::from_utf8_lossy(&line);
        if let Some((id, ref_name)) = line.trim_end().split_once(' ')
            && ref_name == name
            && !id.starts_with(['#', '^'])
        {
            return Oid::from_str(id)
                .map(Some)
                .map_err(|_| corrupt(format!("packed-refs: bad id for {name}")));
        }
    }
}

/// One tree entry, owned (trees are dropped once listed).
struct GitEntry {
    name: Vec<u8>,
    mode: i32,
    id: Oid,
    blob: bool,
}

/// One level of the depth-first walk: a listing and the next entry to visit.
struct Level<T> {
    prefix: Vec<u8>,
    entries: Vec<T>,
    next: usize,
}

fn list_tree(repo: &Repository, id: Oid, acc: &Acc<'_>) -> Result<Vec<GitEntry>, RepoSkip> {
    let tree = repo.find_tree(id).map_err(git_corrupt)?;
    acc.check_entries(tree.len())?;
    let mut entries: Vec<GitEntry> = tree
        .iter()
        .map(|e| GitEntry {
            name: e.name_bytes().to_vec(),
            mode: e.filemode(),
            id: e.id(),
            blob: e.kind() == Some(ObjectType::Blob),
        })
        .collect();
    // Trees written by git are in this order already; others are sorted
    // here, so paths always come in byte order.
    entries.sort_by(|a, b| tree_order(&a.name, a.mode == MODE_TREE, &b.name, b.mode == MODE_TREE));
    Ok(entries)
}

/// Walks the HEAD tree of the git folder `git_dir`; returns the commit.
fn walk_git(git_dir: &Path, acc: &mut Acc<'_>) -> Result<String, RepoSkip> {
    check_git_dir(git_dir)?;
    let objects = git_dir.join("objects");
    let objects = objects
        .to_str()
        .ok_or_else(|| corrupt("the path of objects/ is not UTF-8"))?;
    let odb = Odb::new().map_err(git_corrupt)?;
    odb.add_disk_alternate(objects).map_err(git_corrupt)?;
    let repo = Repository::from_odb(odb).map_err(git_corrupt)?;
    let Some(head) = resolve_head(git_dir)? else {
        return Err((
            Skip::NoCommits,
            Some("HEAD's branch has no commit".to_string()),
        ));
    };
    let commit = repo
        .find_object(head, None)
        .and_then(|o| o.peel_to_commit())
        .map_err(git_corrupt)?;
    let odb = repo.odb().map_err(git_corrupt)?;

    let mut stack = vec![Level {
        prefix: Vec::new(),
        entries: list_tree(&repo, commit.tree_id(), acc)?,
        next: 0,
    }];
    while let Some(level) = stack.last_mut() {
        let Some(entry) = level.entries.get(level.next) else {
            stack.pop();
            continue;
        };
        level.next += 1;
        let full = join(&level.prefix, &entry.name);
        let (mode, id, blob) = (entry.mode, entry.id, entry.blob);
        acc.enter(stack.len())?;
        match mode {
            MODE_TREE => {
                let entries = list_tree(&repo, id, acc)?;
                stack.push(Level {
                    prefix: full,
                    entries,
                    next: 0,
                });
                continue;
            }
            MODE_LINK => {
                acc.skip(Skip::Symlink);
                continue;
            }
            MODE_GITLINK => {
                acc.skip(Skip::Submodule);
                continue;
            }
            _ if !blob => {
                acc.skip(Skip::NotRegular);
                continue;
            }
            _ => {}
        }
        let Some(path) = acc.check_path(&full) else {
            continue;
        };
        let size = match odb.read_header(id) {
            Ok((size, _)) => size as u64,
            Err(e) if e.code() == ErrorCode::NotFound => {
                acc.problem(Skip::MissingObject, path, e.message().to_string());
                continue;
            }
            Err(e) => return Err(git_corrupt(e)),
        };
        if !acc.admit(size)? {
            continue;
        }
        if acc.surveying() {
            acc.offer(path, id, &[]);
            continue;
        }
        let blob = repo.find_blob(id).map_err(git_corrupt)?;
        acc.offer(path, id, blob.content());
    }
    Ok(commit.id().to_string())
}

/// One entry of a folder listing.
struct FsEntry {
    name: Vec<u8>,
    path: PathBuf,
    kind: FsKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FsKind {
    Dir,
    File,
    Link,
    Other,
}

/// A folder of a plain-folder walk: its listing (ignored entries and `.git`
/// left out), in walk order, and its `.gitignore` rules.
struct FsLevel {
    level: Level<FsEntry>,
    ignore: Option<ignore::gitignore::Gitignore>,
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

fn io_skip(e: &std::io::Error) -> Skip {
    if e.kind() == std::io::ErrorKind::NotFound {
        Skip::Vanished
    } else {
        Skip::Unreadable
    }
}

/// The bytes a name sorts by.
#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// Whether the rules of the folders from the walk's root down to `stack`'s
/// top (the deepest first, as git) ignore `path`.
fn is_ignored(
    stack: &[FsLevel],
    own: Option<&ignore::gitignore::Gitignore>,
    path: &Path,
    dir: bool,
) -> bool {
    let levels = own
        .into_iter()
        .chain(stack.iter().rev().filter_map(|l| l.ignore.as_ref()));
    for rules in levels {
        let m = rules.matched(path, dir);
        if m.is_ignore() {
            return true;
        }
        if m.is_whitelist() {
            return false;
        }
    }
    false
}

/// Lists folder `dir` (relative path `prefix`) for the walk: `None` (with
/// the problem counted) when it cannot be listed.
fn list_folder(
    dir: &Path,
    prefix: Vec<u8>,
    stack: &[FsLevel],
    acc: &mut Acc<'_>,
) -> Result<Option<FsLevel>, RepoSkip> {
    let rel = String::from_utf8_lossy(&prefix).into_owned();
    let listed = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            acc.problem(Skip::Unreadable, &rel, "no longer a folder".to_string());
            return Ok(None);
        }
        Err(e) => {
            acc.problem(io_skip(&e), &rel, e.to_string());
            return Ok(None);
        }
    };
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            acc.problem(io_skip(&e), &rel, e.to_string());
            return Ok(None);
        }
    };
    let mut entries = Vec::new();
    for entry in read {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                acc.problem(io_skip(&e), &rel, e.to_string());
                return Ok(None);
            }
        };
        let name = os_bytes(&entry.file_name());
        if name == b".git" {
            continue;
        }
        let kind = match entry.file_type() {
            Ok(t) if t.is_symlink() => FsKind::Link,
            Ok(t) if t.is_dir() => FsKind::Dir,
            Ok(t) if t.is_file() => FsKind::File,
            Ok(_) => FsKind::Other,
            Err(e) => {
                acc.problem(io_skip(&e), &rel, e.to_string());
                continue;
            }
        };
        entries.push(FsEntry {
            name,
            path: entry.path(),
            kind,
        });
        // One folder alone over the limit: stop listing it.
        acc.check_entries(entries.len())?;
    }
    match std::fs::symlink_metadata(dir) {
        Ok(now) if now.is_dir() && same_inode(&now, &listed) => {}
        _ => {
            acc.problem(
                Skip::Unreadable,
                &rel,
                "replaced while being listed".to_string(),
            );
            return Ok(None);
        }
    }
    // Its own rules apply to its entries, first.
    let ignore = match entries.iter().find(|e| e.name == b".gitignore") {
        Some(e) if e.kind == FsKind::File => gitignore(dir, &e.path, acc.options.max_file_bytes),
        _ => None,
    };
    entries.retain(|e| !is_ignored(stack, ignore.as_ref(), &e.path, e.kind == FsKind::Dir));
    entries.sort_by(|a, b| {
        tree_order(
            &a.name,
            a.kind == FsKind::Dir,
            &b.name,
            b.kind == FsKind::Dir,
        )
    });
    Ok(Some(FsLevel {
        level: Level {
            prefix,
            entries,
            next: 0,
        },
        ignore,
    }))
}

/// The rules of a `.gitignore` file; none when it cannot be read (it is
/// counted as a file of the folder anyway).
fn gitignore(dir: &Path, file: &Path, max: u64) -> Option<ignore::gitignore::Gitignore> {
    let bytes = read_file(file, max).ok()??;
    let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
    for line in String::from_utf8_lossy(&bytes).lines() {
        // A bad pattern is ignored, as git does.
        let _ = builder.add_line(None, line);
    }
    builder.build().ok()
}

/// Walks a plain folder, in byte order of paths.
fn walk_folder(root: &Path, acc: &mut Acc<'_>) -> Result<(), RepoSkip> {
    let mut stack: Vec<FsLevel> = Vec::new();
    if let Some(level) = list_folder(root, Vec::new(), &stack, acc)? {
        stack.push(level);
    }
    while let Some(top) = stack.last_mut() {
        let Some(entry) = top.level.entries.get(top.level.next) else {
            stack.pop();
            continue;
        };
        top.level.next += 1;
        let full = join(&top.level.prefix, &entry.name);
        let (kind, file) = (entry.kind, entry.path.clone());
        acc.enter(stack.len())?;
        match kind {
            FsKind::Dir => {
                if let Some(level) = list_folder(&file, full, &stack, acc)? {
                    stack.push(level);
                }
                continue;
            }
            FsKind::Link => {
                acc.skip(Skip::Symlink);
                continue;
            }
            FsKind::Other => {
                acc.skip(Skip::NotRegular);
                continue;
            }
            FsKind::File => {}
        }
        let Some(path) = acc.check_path(&full) else {
            continue;
        };
        let path = path.to_string();
        let size = match std::fs::symlink_metadata(&file) {
            Ok(meta) => meta.len(),
            Err(e) => {
                acc.problem(io_skip(&e), &path, e.to_string());
                continue;
            }
        };
        if !acc.admit(size)? {
            continue;
        }
        match read_file(&file, acc.options.max_file_bytes) {
            Ok(Some(bytes)) => match Oid::hash_object(ObjectType::Blob, &bytes) {
                Ok(key) => acc.offer(&path, key, &bytes),
                Err(e) => acc.problem(Skip::Unreadable, &path, e.message().to_string()),
            },
            Ok(None) => acc.skip(Skip::TooLarge),
            Err((reason, error)) => acc.problem(reason, &path, error),
        }
    }
    Ok(())
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
