//! Joins the indices of sub-folders into one root index.json, as
//! mosaicml-streaming's `merge_index` does (ProLong's `procNN-64/` layout).

use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{MdsError, Result};
use crate::index::{INDEX_FILE, Index};

/// Finds every sub-folder of `root` (at any depth) that holds an index.json,
/// in sorted path order, and writes `root/index.json` listing their shards
/// with basenames relative to `root`.
pub fn merge_index(root: &Path) -> Result<Index> {
    let mut subdirs = Vec::new();
    find_indexed_subdirs(root, root, &mut subdirs)?;
    subdirs.sort();
    if subdirs.is_empty() {
        return Err(MdsError::BadIndex {
            path: root.to_path_buf(),
            reason: "no sub-folder holds an index.json to merge".into(),
        });
    }
    let mut shards = Vec::new();
    for rel in &subdirs {
        let index = Index::load(&root.join(rel))?;
        let prefix = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        for mut shard in index.shards {
            shard.raw_data.basename = format!("{prefix}/{}", shard.raw_data.basename);
            if let Some(zip) = &mut shard.zip_data {
                zip.basename = format!("{prefix}/{}", zip.basename);
            }
            shards.push(shard);
        }
    }
    let merged = Index { shards, version: 2 };
    // Sub-folders with other columns make no one dataset: refuse before writing.
    merged.check_same_columns(&root.join(INDEX_FILE))?;
    write_atomic(&root.join(INDEX_FILE), merged.to_merged_json().as_bytes())?;
    Ok(merged)
}

fn find_indexed_subdirs(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| MdsError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MdsError::io(dir, e))?;
        let file_type = entry
            .file_type()
            .map_err(|e| MdsError::io(entry.path(), e))?;
        if !file_type.is_dir() {
            continue;
        }
        let path = entry.path();
        if path.join(INDEX_FILE).is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        } else {
            find_indexed_subdirs(root, &path, out)?;
        }
    }
    Ok(())
}
