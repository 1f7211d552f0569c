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
    let write = DirWrite::begin(path)?;
    fill(write.tmp())?;
    Ok(write.commit()?)
}

/// [`write_atomic_dir`] in two calls, for a folder that several processes
/// fill: a sharded checkpoint, where every rank writes its own shard into
/// the one temporary folder. One process [begins](Self::begin) the write
/// and hands the others the temporary folder's name ([`Self::tmp`]); once
/// every writer is done (after a barrier), it [commits](Self::commit). The
/// steps, syncs and kill points are [`write_atomic_dir`]'s. Dropped
/// without a commit (an error), it removes its temporary folder: `path`
/// keeps its old folder.
#[derive(Debug)]
pub struct DirWrite {
    path: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl DirWrite {
    /// Removes what dead writers of `path` left, creates the parent folder
    /// if needed and a fresh empty temporary folder beside `path`.
    pub fn begin(path: &Path) -> Result<Self> {
        let parent = parent_of(path);
        std::fs::create_dir_all(parent).map_err(|e| MdsError::io(parent, e))?;
        let tmp = begin(path)?;
        std::fs::create_dir(&tmp).map_err(|e| MdsError::io(&tmp, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// The temporary folder to fill.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Syncs everything in the temporary folder, gives it the name `path`
    /// (replacing a folder of that name atomically) and syncs the parent.
    pub fn commit(mut self) -> Result<()> {
        sync_tree(&self.tmp)?;
        write_step();
        let path = self.path.clone();
        let replaced = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(MdsError::io(&path, e)),
            Ok(_) => Some(replace(&self.tmp, &path)?),
        };
        if replaced.is_none() {
            std::fs::rename(&self.tmp, &path).map_err(|e| MdsError::io(&path, e))?;
        }
        // The temporary name is now free, or holds the old folder (removed below).
        self.committed = true;
        sync_dir(parent_of(&path))?;
        write_step();
        if let Some(old) = replaced {
            remove_any(&old)?;
            write_step();
        }
        Ok(())
    }
}

impl Drop for DirWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
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
