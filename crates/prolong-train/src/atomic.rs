//! Writing a file under a temporary name beside it, then renaming it into place, so a
//! reader (or a resumed run) never sees half a file. Used by the checkpoint, config.json
//! and the trainer's metrics; below every module that writes, so none of them depends on
//! another to get it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    std::fs::write(&tmp, bytes).map_err(|source| Error::Io {
        path: tmp.clone(),
        err: source,
    })?;
    rename(&tmp, path)
}

pub(crate) fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    s.into()
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|source| Error::Io {
        path: to.into(),
        err: source,
    })
}
