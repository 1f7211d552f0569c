use std::path::PathBuf;

use prolong_data::recipe::{Recipe, RunOptions, StepOutcome, run_recipe, step_status};

use super::task_args::TaskArgs;

/// Run a recipe: its steps (repos, tokenize, chat-synth, chat, filter, sample, pack, mix) in order.
///
/// A step whose outputs are complete (every task's completion marker, or
/// sample's report / mix's manifest, present) is skipped; deleting a marker
/// redoes that task. The first error stops the run with one line naming the
/// step. Paths in the recipe are relative to its folder unless absolute;
/// ${NAME} takes the environment, else [vars]. Format:
/// schemas/recipe.schema.json; examples: pipelines/corpus.toml.
///
/// --rank/--world-size (default SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT)
/// go to the sharded stages (repos, tokenize, chat, filter, pack); chat-synth,
/// sample and mix run on rank 0. A step needs every task of the steps before it, so in a job
/// array run one step per array job (--step NAME) chained with
/// --dependency=afterok: pipelines/slurm/.
///
/// Examples:
///   prolong-data run pipelines/corpus.toml
///   prolong-data run pipelines/corpus.toml --list
///   prolong-data run pipelines/corpus.toml --step tokenize-book --rank 3 --world-size 8
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The recipe (TOML).
    recipe: PathBuf,
    /// Run only this step (repeatable).
    #[arg(long, value_name = "NAME")]
    step: Vec<String>,
    /// List the steps and how many of their tasks are done; run nothing.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    task: TaskArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let recipe = Recipe::load(&args.recipe)?;
    let task = args.task.resolve()?;
    if args.list {
        for step in &recipe.steps {
            let status = step_status(&recipe, step, task.world_size)?;
            println!(
                "{:<24} {:<9} {:<8} {}/{} tasks done  {}",
                step.name,
                step.stage.name(),
                if step.stage.is_sharded() {
                    "sharded"
                } else {
                    "single"
                },
                status.tasks_done,
                status.tasks,
                prolong_data::recipe::run::step_out(&recipe, step)?.display()
            );
        }
        return Ok(());
    }
    let options = RunOptions {
        task,
        only: args.step.clone(),
    };
    println!("run {} as task {}", args.recipe.display(), task.name());
    let reports = run_recipe(&recipe, &options, &mut |report| {
        let what = match &report.outcome {
            StepOutcome::Ran(summary) => format!("done: {summary}"),
            StepOutcome::Skipped => "skipped (output complete)".to_string(),
            StepOutcome::OtherRank => "skipped (a single task: rank 0 runs it)".to_string(),
        };
        println!("== {} ({}) {what}", report.name, report.stage);
    })?;
    let ran = reports
        .iter()
        .filter(|r| matches!(r.outcome, StepOutcome::Ran(_)))
        .count();
    println!(
        "{} steps: {ran} run, {} skipped",
        reports.len(),
        reports.len() - ran
    );
    Ok(())
}
