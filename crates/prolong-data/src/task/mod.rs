//! One task of a `--rank R --world-size N` run of a stage, as a Slurm job
//! array runs them: task R takes inputs R, R+N, R+2N, ...; writes its own
//! output, then its stats file, then its completion marker, last. A re-run
//! skips a task whose marker exists and redoes one without from scratch.
//!
//! A stage's task is handed a [`Task`]: which task of how many
//! ([`TaskSpec`]) and the run's output folder. Every stage goes through the
//! same steps here: [`Task::check_output`] before it reads anything (the
//! output apart from the inputs, and the settings recorded in the run's
//! markers equal to this run's), [`Task::clear_output`] before it redoes a
//! task, [`Task::complete`] after, and [`Task::merge_if_complete_in`] on
//! every run, so a merged index a kill left unwritten is written by the next
//! run.

mod histogram;
mod markers;
mod merge;
mod output;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use histogram::{LengthBucket, LengthHistogram};
pub use merge::remove_file_if_present;
pub use output::{OutputError, check_apart};

/// The ending of the stats file every task writes beside its output
/// (`procR-N.stats.json`, `part-R-of-N.stats.json`): bookkeeping, never a
/// document file, so the stages that expand folders into inputs pass it over.
pub const STATS_SUFFIX: &str = ".stats.json";

/// How a running task tells a progress bar how far it is: `(done, total)`, in
/// the stage's unit (filter: samples read; sample: documents read).
pub type OnProgress<'a> = dyn FnMut(u64, u64) + 'a;

/// Which task of how many this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub rank: usize,
    pub world_size: usize,
}

/// Task R of N of a run writing into `out`, the run's output folder: what
/// names the task's folder `out/procR-N`, its stats and marker beside it, and
/// the run's merged index.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    pub spec: TaskSpec,
    pub out: &'a Path,
}

/// The first keys of a task's stats file: which task of how many wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHeader {
    /// The name of the task's files: [`TaskSpec::name`] (`repos`: `part-R-of-N`).
    pub task: String,
    pub rank: usize,
    pub world_size: usize,
}

/// Documents and tokens a task read and wrote, as its stats file counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InOutCounts {
    pub documents_in: u64,
    pub documents_out: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

impl InOutCounts {
    /// Adds another task's counts (for a run's summary).
    pub fn add(&mut self, other: &InOutCounts) {
        self.documents_in += other.documents_in;
        self.documents_out += other.documents_out;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
    }
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

    /// The header of this task's stats file.
    pub fn header(&self) -> TaskHeader {
        TaskHeader {
            task: self.name(),
            rank: self.rank,
            world_size: self.world_size,
        }
    }

    /// This task's share of `items`: R, R+N, R+2N, ...
    pub fn take<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> + 'a {
        items.iter().skip(self.rank).step_by(self.world_size)
    }

    /// This task of a run writing into `out`.
    pub fn at(self, out: &Path) -> Task<'_> {
        Task { spec: self, out }
    }
}

impl<'a> Task<'a> {
    /// Every task of the run, this one among them, in rank order.
    pub fn every(self) -> impl Iterator<Item = Task<'a>> {
        let world_size = self.spec.world_size;
        (0..world_size).map(move |rank| TaskSpec { rank, world_size }.at(self.out))
    }
}

#[cfg(test)]
mod tests {
    //! Task names and shares, the output checks, markers and histograms.

    use std::path::Path;

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
    fn outputs_overlapping_an_input_are_refused_through_links_and_dots() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("tok");
        std::fs::create_dir_all(input.join("a")).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let relation = |out: &Path| match check_apart(out, std::slice::from_ref(&input)) {
            Err(OutputError::Overlaps { relation, .. }) => relation,
            Err(e) => panic!("{e}"),
            Ok(()) => "apart",
        };
        assert_eq!(relation(&input), "is");
        assert_eq!(relation(&link), "is");
        assert_eq!(relation(&tmp.path().join("tok/a/../")), "is");
        assert_eq!(relation(&link.join("new/deeper")), "is inside");
        assert_eq!(relation(tmp.path()), "holds");
        // A sibling sharing the name's prefix, and a new folder beside it.
        assert_eq!(relation(&tmp.path().join("tok2")), "apart");
        assert_eq!(relation(&tmp.path().join("out/x")), "apart");
    }

    #[test]
    fn markers_record_settings_and_a_change_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let t = TaskSpec::new(1, 2).unwrap().at(out);
        let settings = serde_json::json!({"domain": "web", "share": 0.1 + 0.2, "n": 3});
        t.complete(&serde_json::json!({}), &settings).unwrap();
        // Rank 0 (not done) checks rank 1's marker too.
        let t0 = TaskSpec::new(0, 2).unwrap().at(out);
        t0.check_output(&[], &settings).unwrap();
        let other = serde_json::json!({"domain": "book", "share": 0.1 + 0.2, "n": 3});
        let err = t0.check_output(&[], &other).unwrap_err().to_string();
        assert!(
            err.contains("proc1-2 was made with other settings"),
            "{err}"
        );
        assert!(err.contains("domain was \"web\", now \"book\""), "{err}");
        let fewer = serde_json::json!({"domain": "web", "share": 0.1 + 0.2});
        let err = t0.check_output(&[], &fewer).unwrap_err().to_string();
        assert!(err.contains("n was 3, now unset"), "{err}");
        // A marker of an older version, without settings, is not compared.
        std::fs::write(t.marker_path(), b"").unwrap();
        t0.check_output(&[], &other).unwrap();
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
