//! One task of a `--rank R --world-size N` run of a stage, as a Slurm job
//! array runs them: task R takes inputs R, R+N, R+2N, ...; writes its own
//! output, then its stats file, then its completion marker, last. A re-run
//! skips a task whose marker exists and redoes one without from scratch.
//!
//! Every stage goes through the same steps here: [`TaskSpec::check_output`]
//! before it reads anything (the output apart from the inputs, and the
//! settings recorded in the run's markers equal to this run's),
//! [`TaskSpec::clear_output`] before it redoes a task, [`TaskSpec::complete`]
//! after, and [`TaskSpec::merge_if_complete_in`] on every run, so a merged
//! index a kill left unwritten is written by the next run.

mod histogram;
mod markers;
mod merge;
mod output;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use histogram::{LengthBucket, LengthHistogram};
pub use merge::remove_file_if_present;
pub use output::{OutputError, check_apart};

/// The ending of the stats file every task writes beside its output
/// (`procR-N.stats.json`, `part-R-of-N.stats.json`): bookkeeping, never a
/// document file, so the stages that expand folders into inputs pass it over.
pub const STATS_SUFFIX: &str = ".stats.json";

/// Which task of how many this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub rank: usize,
    pub world_size: usize,
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
}
