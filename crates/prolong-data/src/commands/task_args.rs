//! `--rank R --world-size N`, shared by every sharded command, and the
//! arguments of a stage's own command ([`StageArgs`]).

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

/// A stage's options type that has a command of its own in this folder.
pub trait StageCommand: clap::Args {
    /// The command's help, as written (`verbatim`): its first line is what
    /// `-h` and the command list show, the whole text what `--help` shows.
    const HELP: &'static str;
    /// The help line of `--json`: what the command prints.
    const JSON_HELP: &'static str;

    /// Runs task `task` and prints its summary (as JSON when `json`).
    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()>;
}

// No doc comment here: clap would make it every stage command's about.
#[derive(clap::Args)]
#[command(about = S::HELP.lines().next(), long_about = S::HELP)]
pub struct StageArgs<S: StageCommand> {
    #[command(flatten)]
    pub step: S,
    #[command(flatten)]
    pub task: TaskArgs,
    #[arg(long, help = S::JSON_HELP)]
    pub json: bool,
}

impl<S: StageCommand> StageArgs<S> {
    /// Runs the task that --rank/--world-size (or Slurm's variables) name.
    pub fn run(&self) -> anyhow::Result<()> {
        self.step.run(self.task.resolve()?, self.json)
    }
}
