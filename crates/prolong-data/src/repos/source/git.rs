//! A git repository read from its object database alone: the HEAD commit's
//! tree walked in path order, blobs read (or, surveying, only their ids).

use std::path::Path;

use git2::{ErrorCode, ObjectType, Odb, Oid, Repository};

use super::super::filters::Skip;
use super::collect::{Acc, RepoSkip};
use super::order::{Level, join, tree_order};
use super::refs::{check_git_dir, corrupt, git_corrupt, resolve_head};

const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// One tree entry, owned (trees are dropped once listed).
struct GitEntry {
    name: Vec<u8>,
    mode: i32,
    id: Oid,
    blob: bool,
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
pub(super) fn walk_git(git_dir: &Path, acc: &mut Acc<'_>) -> Result<String, RepoSkip> {
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
