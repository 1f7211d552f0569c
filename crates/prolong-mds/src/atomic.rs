//! Files appear under their final name only once they are complete.
//!
//! Every file a stage writes (shards, index.json, stats, markers, reports,
//! manifests) goes through [`write_atomic_with`]: it first removes the
//! temporary files that dead writers of the same name left beside it, so a
//! re-run after a kill leaves none behind, whichever stage it is.
//!
//! Kill testing: with `PROLONG_KILL_AT_WRITE=N` ([`KILL_AT_WRITE_VAR`]) in
//! its environment, a process sends itself SIGKILL when it reaches its N-th
//! write step (counting from 1). Each atomic write has three steps: before
//! its temporary file is created, after that file is written (and synced)
//! but before the rename, and after the rename. Kill tests choose their kill
//! points by this count, never by timing, so every point is reached on any
//! machine under any load.

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

/// The environment variable that kills a process at its N-th write step
/// (see the module docs).
pub const KILL_AT_WRITE_VAR: &str = "PROLONG_KILL_AT_WRITE";

/// One write step: the process dies here if it is the step
/// `PROLONG_KILL_AT_WRITE` names. Writers that do not go through
/// [`write_atomic_with`] (the trainer's appended metrics lines) call it once
/// per record, so that kill tests can stop them by progress too.
pub fn write_step() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();
    static STEPS: AtomicU64 = AtomicU64::new(0);
    let kill_at = *KILL_AT.get_or_init(|| {
        std::env::var(KILL_AT_WRITE_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    if let Some(at) = kill_at
        && STEPS.fetch_add(1, Ordering::SeqCst) + 1 == at
    {
        kill_self();
    }
}

/// Dies as `kill -9` kills: no destructor runs, no buffer is flushed.
fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: kill(2) on our own pid touches no memory of this process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL is delivered before kill(2) returns; elsewhere, abort.
    std::process::abort()
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
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        remove_stale_temps(dir, &[&name.to_string_lossy()])?;
    }
    write_step();
    let tmp = temp_path(path);
    let result = (|| {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_data()?;
        }
        write_step();
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MdsError::io(path, e)
    })?;
    write_step();
    Ok(())
}

/// Removes the temporary files (`.NAME.tmp.PID.N`) that killed processes left
/// in `dir` for the given final names. Only files of processes that no longer
/// run on this machine are removed, so a concurrent writer here is never
/// disturbed; where that cannot be told (no `/proc`), none are.
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
