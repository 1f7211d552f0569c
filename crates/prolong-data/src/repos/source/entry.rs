//! One entry of the input folder: what it is (a git folder, a bare
//! repository or a plain folder), walked by the matching reader, or why it is
//! skipped whole.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::document::TextBuilder;
use super::super::filters::Skip;
use super::collect::{Acc, Kind, Mode, RepoSkip};
use super::folder::walk_folder;
use super::git::walk_git;
use super::{Problem, RepoResult, ReposOptions};

pub(super) fn skipped_entry(name: String, reason: Skip, error: Option<String>) -> RepoResult {
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

pub(super) fn is_bare_layout(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// An entry walked, or its name and why it was skipped whole.
pub(super) type Walked<'a> = Result<(Acc<'a>, Kind, Option<String>), (String, RepoSkip)>;

pub(super) fn walk_entry<'a>(path: &Path, options: &'a ReposOptions, mode: Mode<'a>) -> Walked<'a> {
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
