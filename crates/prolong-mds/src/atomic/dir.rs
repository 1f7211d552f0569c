//! Folders written whole, replacing an existing folder in one step where the
//! system can swap two names.

use std::path::{Path, PathBuf};

use super::file::begin;
use super::kill::write_step;
use super::stale::remove_any;
use super::sync::{sync_dir, sync_tree};
use super::temp::{parent_of, tagged};
use crate::error::{MdsError, Result};

/// Writes the folder `path` whole: `fill` fills a fresh empty folder at the
/// temporary path it is given (`.NAME.tmp.PID.N` beside `path`), then every
/// file and folder in it is synced, it takes the name `path` (replacing a
/// folder of that name atomically, see the module docs) and the parent is
/// synced. Creates the parent folder if needed. A failing `fill` leaves
/// nothing; `path` keeps its old folder.
pub fn write_atomic_dir<E: From<MdsError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).map_err(|e| MdsError::io(parent, e))?;
    let tmp = begin(path)?;
    std::fs::create_dir(&tmp).map_err(|e| MdsError::io(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = sync_tree(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    write_step();
    let replaced = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(MdsError::io(path, e).into()),
        Ok(_) => Some(replace(&tmp, path)?),
    };
    if replaced.is_none() {
        std::fs::rename(&tmp, path).map_err(|e| MdsError::io(path, e))?;
    }
    sync_dir(parent)?;
    write_step();
    if let Some(old) = replaced {
        remove_any(&old)?;
        write_step();
    }
    Ok(())
}

/// Puts the complete folder `tmp` at `path`, which exists, and returns where
/// the old one now is (to be removed).
fn replace(tmp: &Path, path: &Path) -> Result<PathBuf> {
    match exchange(tmp, path) {
        Ok(()) => return Ok(tmp.to_path_buf()),
        // Not Linux, or a file system without RENAME_EXCHANGE.
        Err(e) if matches!(e.raw_os_error(), Some(code) if is_unsupported(code)) => {}
        Err(e) => return Err(MdsError::io(path, e)),
    }
    let old = tagged(path, "old");
    std::fs::rename(path, &old).map_err(|e| MdsError::io(path, e))?;
    std::fs::rename(tmp, path).map_err(|e| MdsError::io(path, e))?;
    Ok(old)
}

/// Swaps the names `a` and `b` in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(UNSUPPORTED))
}

#[cfg(not(target_os = "linux"))]
const UNSUPPORTED: i32 = -1;

/// Whether `exchange` failed because the system or file system lacks it.
fn is_unsupported(code: i32) -> bool {
    #[cfg(target_os = "linux")]
    let unsupported = [libc::EINVAL, libc::ENOSYS, libc::ENOTSUP];
    #[cfg(not(target_os = "linux"))]
    let unsupported = [UNSUPPORTED];
    unsupported.contains(&code)
}
