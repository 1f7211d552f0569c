//! `prolong-data`: the corpus half of the ProLong recipe, one subcommand per
//! stage. Library code lives in the crate; each command only parses its
//! arguments, calls it, and prints a summary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
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
}

fn main() -> ExitCode {
    prolong_mds::closed_stdout::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Repos(args) => commands::repos::run(args),
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::ChatSynth(args) => commands::chat_synth::run(args),
        Command::Filter(args) => commands::filter::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Mix(args) => commands::mix::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Stats(args) => commands::stats::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", prolong_mds::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
