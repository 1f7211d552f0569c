//! The one safe way to write a file ([`prolong_mds::write_atomic`]: a temporary name
//! tagged with the writer, synced, renamed, the folder synced, dead writers' temps
//! removed), with this crate's error. A module of its own, below every module that
//! writes (the checkpoint, config.json, the trainer's metrics), so none of them depends
//! on another to get it.

use std::path::Path;

use crate::error::Result;

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(prolong_mds::write_atomic(path, bytes)?)
}
