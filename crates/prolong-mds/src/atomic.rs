//! Files appear under their final name only once they are complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{MdsError, Result};

/// A name beside `path` that no other process picks: `.NAME.tmp.PID.N`.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `bytes` to a temporary name beside `path`, syncs it, then renames
/// it into place. For small files that vouch for others (index.json, markers).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_parts(path, &[bytes], true)
}

/// Writes `parts` back to back to a temporary name beside `path`, then
/// renames it into place, without syncing: a killed process leaves either no
/// file or the whole file (the page cache survives the process). Bulk data
/// (shards) uses this; the index.json written after it is synced.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    write_parts(path, parts, false)
}

fn write_parts(path: &Path, parts: &[&[u8]], sync: bool) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        for part in parts {
            file.write_all(part)?;
        }
        if sync {
            file.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MdsError::io(path, e)
    })
}
