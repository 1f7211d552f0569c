//! Every instance of a plan (tasks × lengths × samples), each from its own seed.

use prolong_data::tokenize::Tokenizer;
use prolong_train::data::rng::{SplitMix64, derive_seed};
use rayon::prelude::*;

use super::fit::FitError;
use super::instance::Instance;
use super::json_kv;
use super::prose::Prose;
use super::ruler::{self, needles_of};
use super::task::Task;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: Vec<Task>,
    pub lengths: Vec<usize>,
    pub samples: usize,
    pub seed: u64,
}

/// An instance that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{task} at length {length} (sample {sample}): {source}")]
pub struct GenerateError {
    pub task: Task,
    pub length: usize,
    pub sample: usize,
    pub source: FitError,
}

/// Instance `sample` of `task` at `length`. Its random numbers come from
/// (seed, task, length, sample) alone, so it is the same whatever else is generated.
pub fn generate(
    task: Task,
    length: usize,
    sample: usize,
    seed: u64,
    tok: &Tokenizer,
    prose: Option<&Prose>,
) -> Result<Instance, GenerateError> {
    let rng = SplitMix64::new(derive_seed(
        seed,
        &[task.stable_id(), length as u64, sample as u64],
    ));
    let budget = task.max_new_tokens();
    let made = match needles_of(task) {
        Some(spec) => ruler::make(spec, length, budget, rng, tok, prose)
            .map(|(s, fit)| (s.query, s.answers, s.depths, fit)),
        None => json_kv::make(sample, length, budget, rng, tok)
            .map(|(s, fit)| (s.gold_key, vec![s.gold_value], vec![s.depth], fit)),
    };
    let (query, answers, depths, fit) = made.map_err(|source| GenerateError {
        task,
        length,
        sample,
        source,
    })?;
    Ok(Instance {
        task,
        length,
        sample,
        seed,
        input: fit.prompt,
        answers,
        query,
        depths,
        max_new_tokens: budget,
        prompt_tokens: fit.prompt_tokens,
        haystack_units: fit.units,
    })
}

/// Every instance of `plan`, task by task, then length, then sample (made in
/// parallel; the first error in that order is the one reported).
pub fn generate_all(
    plan: &Plan,
    tok: &Tokenizer,
    prose: Option<&Prose>,
) -> Result<Vec<Instance>, GenerateError> {
    let mut jobs = Vec::new();
    for &task in &plan.tasks {
        for &length in &plan.lengths {
            jobs.extend((0..plan.samples).map(|s| (task, length, s)));
        }
    }
    let made: Vec<Result<Instance, GenerateError>> = jobs
        .into_par_iter()
        .map(|(task, length, sample)| generate(task, length, sample, plan.seed, tok, prose))
        .collect();
    made.into_iter().collect()
}
