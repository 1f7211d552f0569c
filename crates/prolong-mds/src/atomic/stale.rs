//! What killed writers left behind: their temporaries removed, their
//! renamed-aside old folders restored or removed.

use std::path::Path;

use crate::error::{MdsError, Result};

/// Removes a file or a folder with everything in it; gone already is fine.
pub(super) fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(MdsError::io(path, e)),
        _ => Ok(()),
    }
}

/// Removes what killed writers left in `dir` for the given final names:
/// their temporary files and folders (`.NAME.tmp.PID.N`), and the old
/// folders they had renamed aside (`.NAME.old.PID.N`; one whose `NAME` is
/// missing is renamed back to it, as the writer died before its new folder
/// took the name). Only the leftovers of processes that no longer run on this
/// machine are touched, so a concurrent writer here is never disturbed; where
/// that cannot be told (no `/proc`), none are. Every write of this module
/// calls it first; a stage calls it for the names it merges (index.json)
/// before deciding whether a merge is needed.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> Result<()> {
    remove_stale(dir, |name| names.contains(&name))
}

/// [`remove_stale_temps`] for every final name in `dir`: for a folder whose
/// writes may not be repeated under the same names (a trainer's checkpoints
/// folder on resume, before it lists the complete ones).
pub fn remove_all_stale_temps(dir: &Path) -> Result<()> {
    remove_stale(dir, |_| true)
}

fn remove_stale(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<()> {
    if !Path::new("/proc/self").exists() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut restore = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some((name, kind, pid)) = file_name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(rest, _n)| rest.rsplit_once('.'))
            .and_then(|(rest, pid)| {
                let (name, kind) = rest.rsplit_once('.')?;
                Some((name, kind, pid))
            })
        else {
            continue;
        };
        let dead = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists();
        if !dead || !wanted(name) {
            continue;
        }
        match kind {
            "tmp" => remove_any(&entry.path())?,
            "old" if entry.file_type().is_ok_and(|t| t.is_dir()) => {
                restore.push((entry.path(), dir.join(name)));
            }
            _ => {}
        }
    }
    // After the scan, so that a folder restored here is not looked at again.
    for (old, path) in restore {
        if std::fs::symlink_metadata(&path).is_ok() {
            remove_any(&old)?;
        } else {
            std::fs::rename(&old, &path).map_err(|e| MdsError::io(&path, e))?;
        }
    }
    Ok(())
}
