//! `prolong-data`: the corpus half of the ProLong recipe, one subcommand per
//! stage. Library code lives in the crate; each command only parses its
//! arguments, calls it, and prints a summary.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

mod commands;

#[derive(clap::Parser)]
#[command(
    name = "prolong-data",
    version,
    about = "Build long-context training data: tokenize, pack and inspect MDS datasets",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: not worth boxing the larger options. Each
// command's help text is in its own file, on its `Args` (a stage's own
// command: `StageCommand::HELP`).
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    Inspect(commands::inspect::Args),
    Verify(commands::verify::Args),
    Merge(commands::merge::Args),
    Pack(commands::pack::Args),
    Repos(commands::repos::Args),
    Tokenize(commands::tokenize::Args),
    Chat(commands::chat::Args),
    ChatSynth(commands::chat_synth::Args),
    Filter(commands::filter::Args),
    Sample(commands::sample::Args),
    Mix(commands::mix::Args),
    Run(commands::run::Args),
    Stats(commands::stats::Args),
    Schema(commands::schema::Args),
}

fn main() -> ExitCode {
    prolong_mds::closed_stdout::exit_quietly_on_closed_stdout();
    // Registered stages without a command of their own get the generic one.
    let mut command = Cli::command();
    let mut generic = Vec::new();
    for info in prolong_data::stage::STAGES {
        if command.find_subcommand(info.name).is_none() {
            command = command.subcommand(commands::stage::command(info));
            generic.push(info);
        }
    }
    let matches = command.get_matches();
    let stage = matches
        .subcommand()
        .and_then(|(name, sub)| Some((*generic.iter().find(|i| i.name == name)?, sub)));
    let result = match stage {
        Some((info, sub)) => commands::stage::run(info, sub),
        None => match Cli::from_arg_matches(&matches) {
            Ok(cli) => run(cli.command),
            Err(e) => e.exit(),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", prolong_mds::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Repos(args) => args.run(),
        Command::Tokenize(args) => args.run(),
        Command::Chat(args) => args.run(),
        Command::ChatSynth(args) => commands::chat_synth::run(args),
        Command::Filter(args) => args.run(),
        Command::Sample(args) => args.run(),
        Command::Mix(args) => commands::mix::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Schema(args) => commands::schema::run(args),
    }
}
