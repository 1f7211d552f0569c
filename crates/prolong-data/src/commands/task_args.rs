//! `--rank R --world-size N`, shared by every sharded command.

use prolong_data::task::{TaskError, TaskSpec};

#[derive(clap::Args)]
pub struct TaskArgs {
    /// This task's rank R: it takes inputs R, R+N, ... (default:
    /// SLURM_ARRAY_TASK_ID, else 0).
    #[arg(long, value_name = "R")]
    pub rank: Option<usize>,
    /// Number of tasks N (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long, value_name = "N")]
    pub world_size: Option<usize>,
}

impl TaskArgs {
    pub fn resolve(&self) -> Result<TaskSpec, TaskError> {
        TaskSpec::resolve(self.rank, self.world_size)
    }
}
