//! Syncs that make a rename durable: the data before the name, the folder
//! after it.

use std::path::Path;

use crate::error::{MdsError, Result};

/// Syncs a folder's entries (names created, renamed or removed in it).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MdsError::io(dir, e))?;
    // Elsewhere folders cannot be opened to sync; a rename is durable there
    // once the file system says so.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Syncs every file and folder under `dir`, and `dir` itself (contents
/// before the folder that names them).
pub(super) fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| MdsError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MdsError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| MdsError::io(&path, e))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(|e| MdsError::io(&path, e))?;
        }
    }
    sync_dir(dir)
}
