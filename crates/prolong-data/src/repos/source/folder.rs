//! A plain folder walked in path order, honouring its own `.gitignore`
//! files, never following a link, and checking each folder is still the one
//! listed.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid};

use super::super::filters::Skip;
use super::collect::{Acc, RepoSkip};
use super::order::{Level, join, tree_order};
use super::read::{io_skip, read_file, same_inode};

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
pub(super) fn walk_folder(root: &Path, acc: &mut Acc<'_>) -> Result<(), RepoSkip> {
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
