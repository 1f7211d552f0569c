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
    write_atomic_with(path, sync, |file| {
        parts.iter().try_for_each(|p| file.write_all(p))
    })
}

/// Streams a file to a temporary name beside `path` (`fill` writes it through
/// a buffer), optionally syncs it, then renames it into place.
pub fn write_atomic_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
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

/// Removes the temporary files (`.NAME.tmp.PID.N`) that killed processes left
/// in `dir` for the given final names. Only files of processes that no longer
/// run are removed, so a concurrent writer is never disturbed; where that
/// cannot be told (no `/proc`), none are.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> Result<()> {
    if !Path::new("/proc/self").exists() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some((name, pid)) = file_name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(rest, _n)| rest.rsplit_once(".tmp."))
        else {
            continue;
        };
        let dead = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists();
        if dead && names.contains(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(MdsError::io(entry.path(), e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}
