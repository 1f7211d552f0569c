//! The NCCL unique id, passed from rank 0 to every other rank through a file on a path
//! all ranks share (a network file system across nodes).
//!
//! Rank 0 creates the id and writes `TAG\nID` atomically (temporary name, then rename), so
//! a reader sees either no file or the whole of it. The tag names the run (the Slurm job
//! id, a torchrun run id, ...): a file left by an earlier run carries another tag and is
//! waited past, never used. Other ranks poll until the file with their tag appears, or
//! give up after a timeout with an error that says what to check.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{DistError, DistResult};

/// How often non-root ranks look for the file.
pub const POLL: Duration = Duration::from_millis(50);

/// Rank 0: `make()` the id and publish it under `tag`; other ranks: wait for it (at most
/// `timeout`). Every rank returns the same `id_len` bytes.
pub fn share_unique_id(
    path: &Path,
    is_root: bool,
    tag: &str,
    id_len: usize,
    timeout: Duration,
    make: impl FnOnce() -> Vec<u8>,
) -> DistResult<Vec<u8>> {
    if tag.contains('\n') {
        return Err(DistError::Layout(format!(
            "unique-id tag {tag:?} has a newline"
        )));
    }
    if is_root {
        let id = make();
        if id.len() != id_len {
            return Err(DistError::Layout(format!(
                "unique id has {} bytes, expected {id_len}",
                id.len()
            )));
        }
        prolong_mds::write_atomic(path, &[tag.as_bytes(), b"\n", &id].concat())?;
        return Ok(id);
    }
    let start = Instant::now();
    loop {
        match std::fs::read(path) {
            Ok(bytes) => {
                if let Some(id) = parse(&bytes, tag, id_len) {
                    return Ok(id.to_vec());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(DistError::Io {
                    path: path.to_owned(),
                    err: source,
                });
            }
        }
        if start.elapsed() >= timeout {
            return Err(DistError::Timeout {
                path: path.to_owned(),
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The id of a file written under `tag`; `None` for another run's file.
fn parse<'a>(bytes: &'a [u8], tag: &str, id_len: usize) -> Option<&'a [u8]> {
    let rest = bytes.strip_prefix(tag.as_bytes())?.strip_prefix(b"\n")?;
    (rest.len() == id_len).then_some(rest)
}
