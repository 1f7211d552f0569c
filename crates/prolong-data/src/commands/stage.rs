//! The subcommand of a registered stage that has no command of its own in
//! this folder: its options (from its options type), `--rank/--world-size`
//! when it is sharded, and a one-line summary. A stage's own command adds a
//! progress bar and a fuller summary.

use clap::{Args as _, FromArgMatches as _};
use prolong_data::stage::StageInfo;

use super::task_args::TaskArgs;

pub fn command(info: &StageInfo) -> clap::Command {
    let command = (info.command)();
    let command = match info.sharded {
        true => TaskArgs::augment_args(command),
        false => command,
    };
    command.about(format!(
        "The {} stage (a recipe step's `stage = \"{}\"` takes the same options)",
        info.name, info.name
    ))
}

pub fn run(info: &StageInfo, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let task = match info.sharded {
        true => TaskArgs::from_arg_matches(matches)?.resolve()?,
        false => prolong_data::task::TaskSpec::new(0, 1)?,
    };
    let summary = (info.run)(matches, task)?;
    println!(
        "{} {}: {}",
        info.name,
        task.name(),
        summary.as_deref().unwrap_or("already complete")
    );
    Ok(())
}
