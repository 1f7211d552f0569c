//! Finishing a run: dead writers' temporaries removed, an earlier attempt's
//! output cleared, and the merged index written once every task is done.

use std::path::{Path, PathBuf};

use super::{Task, TaskSpec};

impl Task<'_> {
    /// Removes what killed processes left half-written beside the run's
    /// output: temporary stats, marker and merged-index files of every task.
    pub fn remove_stale_temps(&self) -> Result<(), prolong_mds::MdsError> {
        let mut names = vec![prolong_mds::INDEX_FILE.to_string()];
        for task in self.every() {
            let name = task.spec.name();
            names.push(format!("{name}.stats.json"));
            names.push(format!("{name}.done"));
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        prolong_mds::remove_stale_temps(self.out, &names)
    }

    /// Clears what an earlier attempt of this task left, before it is redone
    /// from scratch: a merged index of an earlier complete run (it would
    /// vouch for shards being rewritten), half-written temporaries beside
    /// `out` and the task's folder `out/procR-N`, which it returns.
    pub fn clear_output(&self) -> Result<PathBuf, prolong_mds::MdsError> {
        remove_file_if_present(&self.out.join(prolong_mds::INDEX_FILE))?;
        self.remove_stale_temps()?;
        let dir = self.out.join(self.spec.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|err| prolong_mds::MdsError::Io {
                path: dir.clone(),
                err,
            })?;
        }
        Ok(dir)
    }

    /// Once every task of the run is done, writes the merged `out/index.json`
    /// if it is missing. Returns whether the run is complete.
    pub fn merge_if_complete(&self) -> Result<bool, prolong_mds::MdsError> {
        self.merge_if_complete_in(&[self.out.to_path_buf()])
    }

    /// Once every task of the run is done, writes each missing merged
    /// index.json of `dirs` (in order: deepest first, as a merge reads the
    /// indices below it), an empty one where no task wrote anything below,
    /// and removes the temporaries killed writers left beside the run's
    /// files. Every stage finishes through here on every run, also one that
    /// skips its completed task: whatever step a kill interrupted, the next
    /// run completes the output. Returns whether the run is complete.
    pub fn merge_if_complete_in(&self, dirs: &[PathBuf]) -> Result<bool, prolong_mds::MdsError> {
        if !self.all_done() {
            return Ok(false);
        }
        self.remove_stale_temps()?;
        for dir in dirs {
            if !dir.is_dir() {
                continue;
            }
            prolong_mds::remove_stale_temps(dir, &[prolong_mds::INDEX_FILE])?;
            let index = dir.join(prolong_mds::INDEX_FILE);
            if index.is_file() {
                continue;
            }
            if has_indexed_subdir(dir)? {
                prolong_mds::merge_index(dir)?;
            } else {
                let empty = prolong_mds::Index {
                    shards: Vec::new(),
                    version: 2,
                };
                prolong_mds::write_atomic(&index, empty.to_merged_json().as_bytes())?;
            }
        }
        Ok(true)
    }
}

impl TaskSpec {
    /// The first entry of `dir` named like a task of another world size
    /// (`procR-M` or `procR-M.done`, M ≠ N): a merged index would pick up
    /// its shards beside this run's.
    pub fn other_world_size_entry(&self, dir: &Path) -> Option<String> {
        let entries = std::fs::read_dir(dir).ok()?;
        let world_size = self.world_size.to_string();
        entries.flatten().find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".done").unwrap_or(&name);
            let (rank, world) = stem.strip_prefix("proc")?.split_once('-')?;
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            (!rank.is_empty() && digits(rank) && digits(world) && world != world_size)
                .then_some(name)
        })
    }

    /// Refuses folders holding task folders or markers of another world size
    /// ([`Self::other_world_size_entry`]): their merged index would pick them up.
    pub fn check_world_size<'a>(
        &self,
        dirs: impl IntoIterator<Item = &'a Path>,
    ) -> Result<(), super::OutputError> {
        for dir in dirs {
            if let Some(found) = self.other_world_size_entry(dir) {
                return Err(super::OutputError::OtherWorldSize {
                    dir: dir.to_path_buf(),
                    found,
                });
            }
        }
        Ok(())
    }
}

/// Removes `path` if it exists: a merged index or report of an earlier
/// complete run, which would vouch for outputs being rewritten.
pub fn remove_file_if_present(path: &Path) -> Result<(), prolong_mds::MdsError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(prolong_mds::MdsError::Io {
            path: path.to_path_buf(),
            err,
        }),
        _ => Ok(()),
    }
}

fn has_indexed_subdir(dir: &Path) -> Result<bool, prolong_mds::MdsError> {
    let io = |err| prolong_mds::MdsError::Io {
        path: dir.to_path_buf(),
        err,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir()
            && (path.join(prolong_mds::INDEX_FILE).is_file() || has_indexed_subdir(&path)?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}
