//! `prolong-eval`: perplexity by position, synthetic recall, and HF export of a checkpoint.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "prolong-eval",
    version,
    about = "Evaluate long-context checkpoints: perplexity by position, synthetic recall, HF export"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Ppl(commands::ppl::Args),
    Recall(commands::recall::Args),
    Export(commands::export::Args),
}

fn main() -> ExitCode {
    prolong_mds::closed_stdout::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ppl(args) => commands::ppl::run(args),
        Command::Recall(args) => commands::recall::run(args),
        Command::Export(args) => commands::export::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", prolong_mds::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
