//! Recipes (`prolong-data run`): every stage in order on tiny generated
//! inputs (SFT chat data too: chat-synth, chat, pack with the mask, mix),
//! skipped on a re-run, one step redone after its marker is deleted; unknown
//! keys are errors with the file and line.

use crate::common;

use std::path::Path;
use std::process::Command;

use prolong_data::recipe::{Recipe, RecipeError, RunOptions, StepOutcome, run_recipe};
use prolong_data::task::TaskSpec;

mod parse;
mod run;
mod schema;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prolong-data"))
}

/// Task `rank` of `world`, only the steps named in `only` (every step when empty).
fn options(rank: usize, world: usize, only: &[&str]) -> RunOptions {
    RunOptions {
        task: TaskSpec::new(rank, world).unwrap(),
        only: only.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every folder `dirs` of `data` is a well-formed MDS dataset of packed samples.
fn verify_packed(data: &Path, dirs: &[&str]) {
    for d in dirs {
        prolong_mds::verify_with(&data.join(d), &prolong_packed::check_sample)
            .unwrap_or_else(|e| panic!("{d}: {e}"));
    }
}

fn run(recipe: &Recipe) -> Vec<(String, StepOutcome)> {
    run_recipe(recipe, &options(0, 1, &[]), &mut |_| {})
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.outcome))
        .collect()
}
