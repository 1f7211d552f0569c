//! HEAD and refs resolved from the git folder's own files (loose refs, then
//! `packed-refs`), after refusing a git folder that points elsewhere.

use std::io::{BufRead, Read};
use std::path::Path;

use git2::Oid;

use super::super::filters::Skip;
use super::collect::RepoSkip;
use super::read::read_file;

/// Longest HEAD, loose ref or `objects/info/alternates` file read.
const MAX_REF_FILE_BYTES: u64 = 64 * 1024;
/// Symbolic refs followed from HEAD at most (as git).
const MAX_SYMREF_DEPTH: usize = 5;

fn redirected(what: impl Into<String>) -> RepoSkip {
    (Skip::RedirectedGitDir, Some(what.into()))
}

pub(super) fn corrupt(what: impl Into<String>) -> RepoSkip {
    (Skip::CorruptGit, Some(what.into()))
}

pub(super) fn git_corrupt(e: git2::Error) -> RepoSkip {
    corrupt(e.message().to_string())
}

/// Refuses a git folder that takes anything from outside itself (see the
/// module docs).
pub(super) fn check_git_dir(git_dir: &Path) -> Result<(), RepoSkip> {
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
pub(super) fn resolve_head(git_dir: &Path) -> Result<Option<Oid>, RepoSkip> {
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
