//! One task of a `--rank R --world-size N` run of a stage, as a Slurm job
//! array runs them: task R takes inputs R, R+N, R+2N, ...; writes its own
//! output, then its stats file, then its completion marker, last. A re-run
//! skips a task whose marker exists and redoes one without from scratch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which task of how many this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub rank: usize,
    pub world_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("--rank {rank} must be below --world-size {world_size} (and world size at least 1)")]
    BadRank { rank: usize, world_size: usize },
    #[error("{var}={value:?} is not a number")]
    BadEnv { var: &'static str, value: String },
}

impl TaskSpec {
    pub fn new(rank: usize, world_size: usize) -> Result<TaskSpec, TaskError> {
        if world_size == 0 || rank >= world_size {
            return Err(TaskError::BadRank { rank, world_size });
        }
        Ok(TaskSpec { rank, world_size })
    }

    /// The given values, else SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT,
    /// else task 0 of 1.
    pub fn resolve(rank: Option<usize>, world_size: Option<usize>) -> Result<TaskSpec, TaskError> {
        fn env(var: &'static str) -> Result<Option<usize>, TaskError> {
            match std::env::var(var) {
                Ok(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| TaskError::BadEnv { var, value }),
                Err(_) => Ok(None),
            }
        }
        let rank = match rank {
            Some(r) => r,
            None => env("SLURM_ARRAY_TASK_ID")?.unwrap_or(0),
        };
        let world_size = match world_size {
            Some(w) => w,
            None => env("SLURM_ARRAY_TASK_COUNT")?.unwrap_or(1),
        };
        TaskSpec::new(rank, world_size)
    }

    /// `proc{rank}-{world_size}`, rank zero-padded to the width of world_size
    /// (`proc0-1`, `proc07-64`): ProLong's names.
    pub fn name(&self) -> String {
        let width = self.world_size.to_string().len();
        format!("proc{:0width$}-{}", self.rank, self.world_size)
    }

    /// This task's share of `items`: R, R+N, R+2N, ...
    pub fn take<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> + 'a {
        items.iter().skip(self.rank).step_by(self.world_size)
    }

    pub fn stats_path(&self, out: &Path) -> PathBuf {
        out.join(format!("{}.stats.json", self.name()))
    }

    pub fn marker_path(&self, out: &Path) -> PathBuf {
        out.join(format!("{}.done", self.name()))
    }

    pub fn is_done(&self, out: &Path) -> bool {
        self.marker_path(out).is_file()
    }

    /// Whether every task of this run has its marker.
    pub fn all_done(&self, out: &Path) -> bool {
        (0..self.world_size).all(|rank| TaskSpec { rank, ..*self }.is_done(out))
    }

    /// Writes the stats file, then the completion marker: in that order, so a
    /// marker always has its stats beside it.
    pub fn complete<S: Serialize>(
        &self,
        out: &Path,
        stats: &S,
    ) -> Result<(), prolong_mds::MdsError> {
        let json = serde_json::to_vec_pretty(stats).expect("stats are plain data");
        prolong_mds::write_atomic(&self.stats_path(out), &json)?;
        prolong_mds::write_atomic(&self.marker_path(out), b"")
    }

    /// Removes what a killed attempt of this task left half-written beside its
    /// output: temporary stats, marker and merged-index files.
    pub fn remove_stale_temps(&self, out: &Path) -> Result<(), prolong_mds::MdsError> {
        let stats = format!("{}.stats.json", self.name());
        let marker = format!("{}.done", self.name());
        prolong_mds::remove_stale_temps(out, &[&stats, &marker, prolong_mds::INDEX_FILE])
    }

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

    /// Clears what an earlier attempt of this task left, before it is redone
    /// from scratch: half-written temporaries beside `out` and the task's
    /// folder `out/procR-N`, which it returns.
    pub fn clear_output(&self, out: &Path) -> Result<PathBuf, prolong_mds::MdsError> {
        self.remove_stale_temps(out)?;
        let dir = out.join(self.name());
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
    pub fn merge_if_complete(&self, out: &Path) -> Result<bool, prolong_mds::MdsError> {
        if !self.all_done(out) {
            return Ok(false);
        }
        if !out.join(prolong_mds::INDEX_FILE).is_file() {
            prolong_mds::remove_stale_temps(out, &[prolong_mds::INDEX_FILE])?;
            prolong_mds::merge_index(out)?;
        }
        Ok(true)
    }

    /// The stats a completed task wrote.
    pub fn read_stats<S: for<'de> Deserialize<'de>>(&self, out: &Path) -> Option<S> {
        let bytes = std::fs::read(self.stats_path(out)).ok()?;
        serde_json::from_slice(&bytes).ok()
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

/// Documents by length in power-of-two buckets [2^k, 2^(k+1)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthHistogram {
    pub buckets: Vec<LengthBucket>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthBucket {
    /// Lengths in [min, max].
    pub min: u64,
    pub max: u64,
    pub documents: u64,
    pub tokens: u64,
}

impl LengthHistogram {
    pub fn add(&mut self, length: u64) {
        let (min, max) = match length {
            0 => (0, 0),
            n => {
                let k = 63 - n.leading_zeros();
                (1u64 << k, (1u64 << k).saturating_mul(2) - 1)
            }
        };
        let at = self.buckets.partition_point(|b| b.min < min);
        if self.buckets.get(at).is_none_or(|b| b.min != min) {
            self.buckets.insert(
                at,
                LengthBucket {
                    min,
                    max,
                    ..Default::default()
                },
            );
        }
        self.buckets[at].documents += 1;
        self.buckets[at].tokens += length;
    }

    pub fn merge(&mut self, other: &LengthHistogram) {
        for b in &other.buckets {
            let at = self.buckets.partition_point(|x| x.min < b.min);
            if self.buckets.get(at).is_none_or(|x| x.min != b.min) {
                self.buckets.insert(
                    at,
                    LengthBucket {
                        documents: 0,
                        tokens: 0,
                        ..b.clone()
                    },
                );
            }
            self.buckets[at].documents += b.documents;
            self.buckets[at].tokens += b.tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_take_every_nth_input_and_name_like_prolong() {
        let inputs: Vec<u32> = (0..10).collect();
        let t = TaskSpec::new(2, 4).unwrap();
        assert_eq!(t.take(&inputs).copied().collect::<Vec<_>>(), vec![2, 6]);
        assert_eq!(t.name(), "proc2-4");
        assert_eq!(TaskSpec::new(7, 64).unwrap().name(), "proc07-64");
        assert!(TaskSpec::new(4, 4).is_err());
        assert!(TaskSpec::new(0, 0).is_err());
    }

    #[test]
    fn histogram_buckets_by_powers_of_two() {
        let mut h = LengthHistogram::default();
        for n in [1, 2, 3, 4, 1000, 1023, 1024, 0] {
            h.add(n);
        }
        let got: Vec<(u64, u64, u64)> = h
            .buckets
            .iter()
            .map(|b| (b.min, b.max, b.documents))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 1),
                (1, 1, 1),
                (2, 3, 2),
                (4, 7, 1),
                (512, 1023, 2),
                (1024, 2047, 1)
            ]
        );
        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.buckets.iter().map(|b| b.documents).sum::<u64>(), 16);
    }
}
