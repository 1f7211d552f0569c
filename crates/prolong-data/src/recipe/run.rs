//! Running a recipe: the steps in order, each through its stage's library
//! function, skipping those whose outputs are complete.
//!
//! - A step is complete when every task of the run (`--world-size N`) has its
//!   completion marker (repos, tokenize, chat, filter, sample, pack), or its
//!   output file is written (mix: the manifest; chat-synth: the JSONL). Deleting a marker makes just that task, hence
//!   that step, run again. Repos, chat, filter, pack and sample check a
//!   completed task's recorded settings (a step edited since is an error
//!   naming it, not stale output); mix and chat-synth rewrite their file when
//!   it would change.
//! - `--rank R --world-size N` (default: SLURM_ARRAY_TASK_ID /
//!   SLURM_ARRAY_TASK_COUNT, else 0 of 1) is passed to the sharded stages;
//!   chat-synth and mix are one task, run by rank 0 (other ranks skip them).
//!   A sample step's last task writes its merged indices and `sample.json`
//!   (a re-run of the step does, if two tasks raced past it).
//! - A later step needs every task of the earlier ones. With N > 1 a run
//!   stops after a sharded step whose other tasks are not done yet; in a job
//!   array, run one step per array job (`--step NAME`, chained with
//!   `--dependency=afterok`, as pipelines/slurm/ does).
//! - Before a step runs, earlier sharded steps whose tasks are all done get
//!   their merged index.json if the last two tasks raced past the merge.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Recipe, RecipeError, Step};
use crate::stage::{StepContext, StepError};
use crate::task::TaskSpec;
use crate::tokenize::Tokenizer;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub task: TaskSpec,
    /// Run only these steps (all when empty).
    pub only: Vec<String>,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran; a one-line summary.
    Ran(String),
    /// Its output (this task's share) was complete.
    Skipped,
    /// Not this rank's: sample and mix run on rank 0.
    OtherRank,
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub name: String,
    /// The stage's name.
    pub stage: &'static str,
    pub outcome: StepOutcome,
}

/// Where a step stands for a run of `world_size` tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepStatus {
    /// Tasks with their marker (1 of 1 for sample and mix when written).
    pub tasks_done: usize,
    pub tasks: usize,
}

impl StepStatus {
    pub fn complete(&self) -> bool {
        self.tasks_done == self.tasks
    }
}

fn ctx(step: &Step) -> impl Fn(String) -> anyhow::Error + '_ {
    move |msg| anyhow::anyhow!("step {:?} ({}): {msg}", step.name, step.stage.name())
}

fn task_done(recipe: &Recipe, step: &Step, task: TaskSpec) -> Result<bool, RecipeError> {
    Ok(step.stage.task_done(task.at(&step_out(recipe, step)?)))
}

/// A stage's error as the run's: the step named, a recipe error as it is.
fn step_error(step: &Step, e: StepError) -> anyhow::Error {
    match e {
        StepError::Recipe(e) => e.into(),
        StepError::Failed(msg) => ctx(step)(msg),
    }
}

/// How many tasks of the step are done, for a run of `world_size` tasks.
pub fn step_status(
    recipe: &Recipe,
    step: &Step,
    world_size: usize,
) -> Result<StepStatus, RecipeError> {
    let tasks = if step.stage.is_sharded() {
        world_size
    } else {
        1
    };
    let mut tasks_done = 0;
    for rank in 0..tasks {
        if task_done(
            recipe,
            step,
            TaskSpec {
                rank,
                world_size: tasks,
            },
        )? {
            tasks_done += 1;
        }
    }
    Ok(StepStatus { tasks_done, tasks })
}

/// Writes the merged index.json of a sharded step whose tasks are all done
/// and whose index is missing.
fn finalize(recipe: &Recipe, step: &Step, world_size: usize) -> anyhow::Result<()> {
    if !step_status(recipe, step, world_size)?.complete() {
        return Ok(());
    }
    let out = step_out(recipe, step)?;
    let mut tokenizers = HashMap::new();
    let task = TaskSpec {
        rank: 0,
        world_size,
    };
    let cx = StepContext::new(Some(recipe), &mut tokenizers, task.at(&out));
    step.stage.finish(&cx).map_err(|e| step_error(step, e))
}

/// Runs the recipe's steps (or `options.only`) in order; stops at the first
/// error, naming the step. `on_step` hears each step as it starts and ends.
pub fn run_recipe(
    recipe: &Recipe,
    options: &RunOptions,
    on_step: &mut dyn FnMut(&StepReport),
) -> anyhow::Result<Vec<StepReport>> {
    for name in &options.only {
        if recipe.step(name).is_none() {
            let names: Vec<&str> = recipe.steps.iter().map(|s| s.name.as_str()).collect();
            anyhow::bail!(
                "{}: no step {name:?} (steps: {})",
                recipe.path.display(),
                names.join(", ")
            );
        }
    }
    let task = options.task;
    let mut tokenizers: HashMap<PathBuf, Tokenizer> = HashMap::new();
    let mut reports = Vec::new();
    let selected: Vec<usize> = (0..recipe.steps.len())
        .filter(|&i| options.only.is_empty() || options.only.contains(&recipe.steps[i].name))
        .collect();
    for (k, &i) in selected.iter().enumerate() {
        let step = &recipe.steps[i];
        for earlier in &recipe.steps[..i] {
            if earlier.stage.is_sharded() {
                finalize(recipe, earlier, task.world_size)?;
            }
        }
        let outcome = if !step.stage.is_sharded() && task.rank != 0 {
            StepOutcome::OtherRank
        } else {
            let this = if step.stage.is_sharded() {
                task
            } else {
                TaskSpec {
                    rank: 0,
                    world_size: 1,
                }
            };
            // A stage skips a completed task itself after checking its
            // settings (a changed setting is an error, or for mix a
            // rewritten manifest).
            let out = step_out(recipe, step)?;
            let mut cx = StepContext::new(Some(recipe), &mut tokenizers, this.at(&out));
            match step.stage.run_task(&mut cx) {
                Ok(Some(summary)) => StepOutcome::Ran(summary),
                Ok(None) => StepOutcome::Skipped,
                Err(e) => return Err(step_error(step, e)),
            }
        };
        if step.stage.is_sharded() {
            finalize(recipe, step, task.world_size)?;
        }
        let report = StepReport {
            name: step.name.clone(),
            stage: step.stage.name(),
            outcome,
        };
        on_step(&report);
        reports.push(report);
        let later = k + 1 < selected.len();
        if later && step.stage.is_sharded() {
            let status = step_status(recipe, step, task.world_size)?;
            if !status.complete() {
                anyhow::bail!(
                    "step {:?} ({}): {} of {} tasks done; the later steps need all of them. \
                     With --world-size > 1 run one step at a time (--step NAME), one job \
                     array per step chained with --dependency=afterok (pipelines/slurm/)",
                    step.name,
                    step.stage.name(),
                    status.tasks_done,
                    status.tasks
                );
            }
        }
    }
    Ok(reports)
}

/// The output path of a step, resolved.
pub fn step_out(recipe: &Recipe, step: &Step) -> Result<PathBuf, RecipeError> {
    recipe.path(&step.out().to_string_lossy())
}
