//! The NCCL unique id, passed from rank 0 to every other rank through a file on a path
//! all ranks share (a network file system across nodes).
//!
//! Rank 0 creates the id and writes `TAG\nID` atomically (temporary name, then rename), so
//! a reader sees either no file or the whole of it. The tag names the run (the Slurm job
//! id, a torchrun run id, ...): a file left by an earlier run carries another tag and is
//! waited past, never used. Other ranks poll until the file with their tag appears, or
//! give up after a timeout with an error that says what to check.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{DistError, DistResult};

/// Where and under which tag a run's ranks exchange the id ([`Rendezvous::from_vars`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    /// The file, on a path every rank sees.
    pub path: PathBuf,
    /// Names this run (a file under another tag is an earlier run's).
    pub tag: String,
    /// How long ranks other than 0 wait for the file.
    pub timeout: Duration,
}

/// The file of the id under the run's output folder (shared by every rank: each
/// writes its checkpoint shards there) when `PROLONG_NCCL_ID_FILE` does not name one.
pub const ID_FILE: &str = "nccl-unique-id";

/// How long ranks wait for rank 0's id by default (rank 0 may still be loading the
/// model from a slow file system); `PROLONG_NCCL_ID_TIMEOUT` (seconds) sets it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl Rendezvous {
    /// From the launcher's environment (`get` looks a variable up) and the run's
    /// output folder `out`. The tag is the first of: `PROLONG_RUN_ID` (set by
    /// `prolong-train launch --backend env`), Slurm's job and step ids, torchrun's
    /// `TORCHELASTIC_RUN_ID` (`--rdzv-id`, or a fresh one with `--standalone`; not
    /// its default `none`). Without any of them ranks could read an earlier run's id
    /// (the master address and port are reused from run to run): that is an error
    /// naming the variable to set.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>, out: &Path) -> DistResult<Self> {
        let path = get("PROLONG_NCCL_ID_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| out.join(ID_FILE));
        let tag = if let Some(id) = get("PROLONG_RUN_ID") {
            id
        } else if let Some(job) = get("SLURM_JOB_ID") {
            let step = get("SLURM_STEP_ID").unwrap_or_else(|| "0".into());
            format!("slurm-{job}.{step}")
        } else if let Some(id) = get("TORCHELASTIC_RUN_ID").filter(|id| id != "none") {
            format!("torchrun-{id}")
        } else {
            return Err(DistError::Env {
                var: "PROLONG_RUN_ID",
                value: String::new(),
                msg: "unset, and no Slurm job or torchrun run id either: set it to a name unique to this run (every rank the same)".into(),
            });
        };
        let timeout = match get("PROLONG_NCCL_ID_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) => Duration::from_secs(s),
                Err(_) => {
                    return Err(DistError::Env {
                        var: "PROLONG_NCCL_ID_TIMEOUT",
                        value: v,
                        msg: "not a whole number of seconds".into(),
                    });
                }
            },
        };
        Ok(Self { path, tag, timeout })
    }

    /// [`share_unique_id`] at this rendezvous; rank 0 creates the folder of the file.
    pub fn share(
        &self,
        is_root: bool,
        id_len: usize,
        make: impl FnOnce() -> Vec<u8>,
    ) -> DistResult<Vec<u8>> {
        if is_root && let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| DistError::Io {
                path: dir.to_owned(),
                err,
            })?;
        }
        share_unique_id(&self.path, is_root, &self.tag, id_len, self.timeout, make)
    }
}

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
