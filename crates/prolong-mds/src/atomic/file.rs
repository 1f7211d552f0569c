//! Files written whole: under a temporary name, synced, then renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::kill::write_step;
use super::stale::remove_stale_temps;
use super::sync::sync_dir;
use super::temp::{parent_of, temp_path};
use crate::error::{MdsError, Result};

/// Writes `bytes` to a temporary name beside `path`, syncs it, renames it
/// into place and syncs the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of `parts` written back to back (a shard's header and
/// samples without concatenating them first).
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    write_atomic_with(path, true, |file| {
        parts.iter().try_for_each(|p| file.write_all(p))
    })
}

/// Streams a file to a temporary name beside `path` (`fill` writes it through
/// a buffer), then renames it into place. With `sync` the file is synced
/// before the rename and the folder after it; `sync: false` is for caches
/// only (data that can be derived again, such as a decompressed shard): a
/// killed process still leaves the whole file or none, but a crash of the
/// machine may lose it.
pub fn write_atomic_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = begin(path)?;
    let result = (|| {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(MdsError::io(path, e));
    }
    commit_file(&tmp, path, sync)
}

/// Has `fill` write the file at the temporary path it is given (for
/// libraries that only write to a path, such as candle's
/// `safetensors::save`), then syncs it, renames it to `path` and syncs the
/// folder. A failing `fill` leaves nothing.
pub fn write_atomic_path<E: From<MdsError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let tmp = begin(path)?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_data());
    if let Err(e) = synced {
        let _ = std::fs::remove_file(&tmp);
        return Err(MdsError::io(path, e).into());
    }
    Ok(commit_file(&tmp, path, true)?)
}

/// [`write_atomic`] for a file whose parts are written in any order over
/// time (a checkpoint's safetensors file, each tensor at the offset its
/// header fixes, as soon as the tensor is at hand): [`begin`](Self::begin)
/// creates the temporary file, [`write_at`](Self::write_at) writes bytes at
/// an offset, [`commit`](Self::commit) syncs the file, renames it to its
/// path and syncs the folder. The steps, syncs and kill points are
/// [`write_atomic`]'s. Dropped without a commit (an error), it removes its
/// temporary: the final name keeps what it held.
#[derive(Debug)]
pub struct FileWrite {
    path: PathBuf,
    tmp: PathBuf,
    /// Open until the commit (closed before the rename).
    file: Option<std::fs::File>,
    committed: bool,
}

impl FileWrite {
    /// Removes what dead writers of `path` left and creates an empty
    /// temporary file beside it.
    pub fn begin(path: &Path) -> Result<Self> {
        let tmp = begin(path)?;
        let file = std::fs::File::create(&tmp).map_err(|e| MdsError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
            committed: false,
        })
    }

    /// Writes `bytes` at byte `offset` of the file (a gap before it reads
    /// as zeros until it is written).
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let Some(file) = self.file.as_mut() else {
            unreachable!("the file is open until the commit, which takes the write")
        };
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| MdsError::io(&self.path, e))
    }

    /// Syncs the file, gives it its name and syncs the folder.
    pub fn commit(mut self) -> Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_data().map_err(|e| MdsError::io(&self.path, e))?;
        }
        // From here `commit_file` removes the temporary itself if the rename fails.
        self.committed = true;
        commit_file(&self.tmp, &self.path, true)
    }
}

impl Drop for FileWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Steps 1 and 2 of every write: dead writers' temporaries of this name
/// removed, the first write step, the new temporary's name.
pub(super) fn begin(path: &Path) -> Result<PathBuf> {
    if let Some(name) = path.file_name() {
        remove_stale_temps(parent_of(path), &[&name.to_string_lossy()])?;
    }
    write_step();
    Ok(temp_path(path))
}

/// The end of a file write: the rename, the folder's sync, the last step.
fn commit_file(tmp: &Path, path: &Path, sync: bool) -> Result<()> {
    write_step();
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(MdsError::io(path, e));
    }
    if sync {
        sync_dir(parent_of(path))?;
    }
    write_step();
    Ok(())
}
