//! Every instance of a plan (tasks × lengths × samples), each from its own seed.

use std::sync::Arc;

use prolong_tokenizer::Tokenizer;
use prolong_train::data::rng::{SplitMix64, derive_seed};
use rayon::prelude::*;

use super::fit::FitError;
use super::helmet::{
    self, HelmetItem, ModelText, MvTemplate, Protocol, RULER_SIZING_BUDGET, json_kv_records,
};
use super::instance::Instance;
use super::json_kv;
use super::prose::Prose;
use super::ruler::{self, needles_of};
use super::task::Task;
use super::values::{Values, WordLists};

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
        Some(spec) => ruler::make(spec, length, budget, Values::new(rng), tok, prose)
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
        protocol: Protocol::Fill,
        truncated_tokens: 0,
    })
}

/// (task, length, sample) of every instance of `plan`, task by task, then length, then
/// sample.
fn jobs(plan: &Plan) -> Vec<(Task, usize, usize)> {
    let mut jobs = Vec::new();
    for &task in &plan.tasks {
        for &length in &plan.lengths {
            jobs.extend((0..plan.samples).map(|s| (task, length, s)));
        }
    }
    jobs
}

/// Every instance of `plan`, task by task, then length, then sample (made in
/// parallel; the first error in that order is the one reported).
pub fn generate_all(
    plan: &Plan,
    tok: &Tokenizer,
    prose: Option<&Prose>,
) -> Result<Vec<Instance>, GenerateError> {
    let made: Vec<Result<Instance, GenerateError>> = jobs(plan)
        .into_par_iter()
        .map(|(task, length, sample)| generate(task, length, sample, plan.seed, tok, prose))
        .collect();
    made.into_iter().collect()
}

/// What `--protocol helmet` makes instances with, besides the plan.
pub struct HelmetSources<'a> {
    /// Sizes the RULER tasks (HELMET's files: Llama-2's tokenizer).
    pub sizing: &'a Tokenizer,
    /// niah_multivalue's haystack.
    pub prose: Option<&'a Prose>,
    /// Word keys (RULER: wonderwords' lists).
    pub words: Arc<WordLists>,
    pub mv: MvTemplate,
}

/// An item as HELMET's files hold it, before truncation, with its needles' depths and
/// haystack units.
pub struct HelmetMade {
    pub item: HelmetItem,
    pub depths: Vec<f64>,
    pub units: usize,
}

/// HELMET-protocol item `sample` of `task` at `length` (seeded as [`generate`]).
pub fn helmet_item(
    task: Task,
    length: usize,
    sample: usize,
    seed: u64,
    src: &HelmetSources,
) -> Result<HelmetMade, GenerateError> {
    let err = |source| GenerateError {
        task,
        length,
        sample,
        source,
    };
    let rng = SplitMix64::new(derive_seed(
        seed,
        &[task.stable_id(), length as u64, sample as u64],
    ));
    let values = Values::with_words(rng, src.words.clone());
    let Some(mut spec) = needles_of(task) else {
        let k = json_kv_records(length).ok_or(err(FitError::NoHelmetSize { length }))?;
        let kv = json_kv::make_helmet(sample, k, values).map_err(err)?;
        return Ok(HelmetMade {
            item: HelmetItem {
                task,
                context: kv.context,
                query: kv.sample.gold_key,
                type_needle_v: String::new(),
                demos: kv.demos,
                answers: vec![kv.sample.gold_value],
            },
            depths: vec![kv.sample.depth],
            units: kv.fillers,
        });
    };
    if src.mv == MvTemplate::Paper {
        spec = spec.paper_wording();
    }
    // `fit` counts a BOS the sizing count does not have (RULER counts the text's
    // tokens only): one token less of budget is the same bound.
    let (s, fit) = ruler::make(
        spec,
        length,
        RULER_SIZING_BUDGET - 1,
        values,
        src.sizing,
        src.prose,
    )
    .map_err(err)?;
    Ok(HelmetMade {
        item: HelmetItem {
            task,
            context: s.context,
            query: s.query,
            type_needle_v: s.type_needle_v,
            demos: Vec::new(),
            answers: s.answers,
        },
        depths: s.depths,
        units: fit.units,
    })
}

/// Every HELMET-protocol instance of `plan` (order as [`generate_all`]), each truncated
/// as HELMET truncates for `model`.
pub fn generate_helmet_all(
    plan: &Plan,
    src: &HelmetSources,
    model: &ModelText,
) -> Result<Vec<Instance>, GenerateError> {
    let made: Vec<Result<Instance, GenerateError>> = jobs(plan)
        .into_par_iter()
        .map(|(task, length, sample)| {
            let m = helmet_item(task, length, sample, plan.seed, src)?;
            helmet::instance(
                &m.item, src.mv, length, sample, plan.seed, m.depths, m.units, model,
            )
            .map_err(|e| GenerateError {
                task,
                length,
                sample,
                source: e.into(),
            })
        })
        .collect();
    made.into_iter().collect()
}
