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
use std::path::{Path, PathBuf};

use super::{Recipe, RecipeError, SourceKey, Stage, Step, TokenOrNone};
use crate::pack::PackOptions;
use crate::task::TaskSpec;
use crate::tokenize::Tokenizer;
use crate::tokenize::{LLAMA3_BOS, LLAMA3_EOS};

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
    pub stage: Stage,
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
    let out = recipe.path(&step.out)?;
    Ok(match step.stage {
        Stage::Repos => crate::repos::task::marker_path(&out, task.rank, task.world_size).is_file(),
        Stage::Tokenize | Stage::Chat | Stage::Filter | Stage::Sample | Stage::Pack => {
            task.is_done(&out)
        }
        Stage::ChatSynth => out.is_file(),
        Stage::Mix => out.is_file(),
    })
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
    let out = recipe.path(&step.out)?;
    match step.stage {
        Stage::Tokenize | Stage::Chat | Stage::Filter
            if !out.join(prolong_mds::INDEX_FILE).is_file() =>
        {
            prolong_mds::merge_index(&out).map_err(|e| ctx(step)(format!("merge: {e}")))?;
        }
        Stage::Pack => {
            let options = pack_options(recipe, step)?;
            crate::pack::merge_if_complete(&out, &options, world_size)
                .map_err(|e| ctx(step)(format!("merge: {e}")))?;
        }
        _ => {}
    }
    Ok(())
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
            // Tokenize is skipped on its marker (loading the tokenizer is the
            // slow part); the other stages are called and skip a completed
            // task themselves after checking its settings (a changed setting
            // is an error, or for mix a rewritten manifest).
            if step.stage == Stage::Tokenize && tokenize_done(recipe, step, this)? {
                StepOutcome::Skipped
            } else {
                run_step(recipe, step, this, &mut tokenizers)?
            }
        };
        if step.stage.is_sharded() {
            finalize(recipe, step, task.world_size)?;
        }
        let report = StepReport {
            name: step.name.clone(),
            stage: step.stage,
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

fn paths(recipe: &Recipe, values: &[String]) -> Result<Vec<PathBuf>, RecipeError> {
    values.iter().map(|v| recipe.path(v)).collect()
}

/// The step's tokenizer (its own `tokenizer`, else the recipe's), loaded
/// once per path.
fn tokenizer<'t>(
    recipe: &Recipe,
    step: &Step,
    tokenizers: &'t mut HashMap<PathBuf, Tokenizer>,
) -> anyhow::Result<&'t Tokenizer> {
    let fail = ctx(step);
    let path = tokenizer_path(recipe, step)?;
    if !tokenizers.contains_key(&path) {
        let t = Tokenizer::from_file(&path).map_err(|e| fail(e.to_string()))?;
        tokenizers.insert(path.clone(), t);
    }
    Ok(&tokenizers[&path])
}

/// The path of the step's tokenizer (its own `tokenizer`, else the recipe's).
fn tokenizer_path(recipe: &Recipe, step: &Step) -> anyhow::Result<PathBuf> {
    match step.tokenizer.as_ref().or(recipe.tokenizer.as_ref()) {
        Some(t) => Ok(recipe.path(t)?),
        None => Err(ctx(step)(
            "no tokenizer (give `tokenizer` in the step or at the top of the recipe)".into(),
        )),
    }
}

/// A tokenize step's input files and options.
fn tokenize_plan(
    recipe: &Recipe,
    step: &Step,
    out: &Path,
) -> anyhow::Result<(Vec<PathBuf>, crate::tokenize::stage::TokenizeOptions)> {
    let fail = ctx(step);
    let mut inputs = paths(recipe, step.inputs.as_deref().unwrap_or_default())?;
    if let Some(SourceKey::Hub(hub)) = &step.source {
        inputs.extend(crate::hub::resolve(hub).map_err(|e| fail(e.to_string()))?);
    }
    crate::task::check_apart(out, &inputs).map_err(|e| fail(e.to_string()))?;
    let files = crate::tokenize::stage::input_files(&inputs).map_err(|e| fail(e.to_string()))?;
    let tokenizer_hash = crate::tokenize::stage::tokenizer_hash(&tokenizer_path(recipe, step)?)
        .map_err(|e| fail(e.to_string()))?;
    let options = crate::tokenize::stage::TokenizeOptions {
        domain: step.domain.clone().unwrap_or_else(|| folder_name(out)),
        text_field: step.text_field.clone().unwrap_or_else(|| "text".into()),
        id_field: step.id_field.clone(),
        select: step.select.clone(),
        group_by_repo: step.group_by_repo.clone(),
        size_limit: step.size_limit.unwrap_or(prolong_mds::DEFAULT_SIZE_LIMIT),
        tokenizer_hash,
    };
    Ok((files, options))
}

/// Whether a tokenize step's task is done (after the checks and merge of
/// [`crate::tokenize::stage::finish_if_done`]): loading the tokenizer is
/// the slow part of a skip.
fn tokenize_done(recipe: &Recipe, step: &Step, task: TaskSpec) -> anyhow::Result<bool> {
    let out = recipe.path(&step.out)?;
    if !task.is_done(&out) {
        return Ok(false);
    }
    let (files, options) = tokenize_plan(recipe, step, &out)?;
    crate::tokenize::stage::finish_if_done(&files, &out, task, &options)
        .map_err(|e| ctx(step)(e.to_string()))
}

/// The output folder's name: the default `domain` of tokenize and chat.
fn folder_name(out: &Path) -> String {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn pack_options(recipe: &Recipe, step: &Step) -> anyhow::Result<PackOptions> {
    let _ = recipe;
    let mut options = PackOptions::new(step.len.unwrap_or(0));
    if let Some(m) = step.min_length {
        options.min_length = m;
    }
    options.split_by_lengths = step.split_by_lengths.clone().unwrap_or_default();
    options.intact = step.intact.unwrap_or(false);
    options.bos = step.bos.map_or(Some(LLAMA3_BOS.id), |b: TokenOrNone| {
        b.resolve(LLAMA3_BOS.id)
    });
    options.eos = step.eos.map_or(Some(LLAMA3_EOS.id), |e: TokenOrNone| {
        e.resolve(LLAMA3_EOS.id)
    });
    options.domain = step.domain.clone();
    options.size_limit = Some(step.size_limit.unwrap_or(prolong_mds::DEFAULT_SIZE_LIMIT));
    options.compression = step.compression.clone();
    Ok(options)
}

fn run_step(
    recipe: &Recipe,
    step: &Step,
    task: TaskSpec,
    tokenizers: &mut HashMap<PathBuf, Tokenizer>,
) -> anyhow::Result<StepOutcome> {
    let fail = ctx(step);
    let ran = |skipped: bool, summary: String| {
        if skipped {
            StepOutcome::Skipped
        } else {
            StepOutcome::Ran(summary)
        }
    };
    let out = recipe.path(&step.out)?;
    match step.stage {
        Stage::Repos => {
            let input = recipe.path(step.input.as_deref().unwrap_or_default())?;
            let options = crate::repos::ReposOptions {
                max_file_bytes: step
                    .max_file_bytes
                    .unwrap_or(crate::repos::DEFAULT_MAX_FILE_BYTES),
                max_files: step.max_files.unwrap_or(crate::repos::DEFAULT_MAX_FILES),
                max_repo_bytes: step
                    .max_repo_bytes
                    .unwrap_or(crate::repos::DEFAULT_MAX_REPO_BYTES),
                max_depth: step.max_depth.unwrap_or(crate::repos::DEFAULT_MAX_DEPTH),
                dedup_files: step.dedup_files.unwrap_or(false),
                source: match &step.source {
                    Some(SourceKey::Name(s)) => s.clone(),
                    _ => crate::repos::DEFAULT_SOURCE.to_string(),
                },
            };
            let report = crate::repos::run_task(
                &input,
                &out,
                &options,
                task.rank,
                task.world_size,
                &mut |_| {},
            )
            .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                report.skipped,
                format!(
                    "{} repositories → {} documents",
                    report.stats.repos_in, report.stats.repos_out
                ),
            ))
        }
        Stage::Tokenize => {
            let (files, options) = tokenize_plan(recipe, step, &out)?;
            let tokenizer = tokenizer(recipe, step, tokenizers)?;
            let stats = crate::tokenize::stage::tokenize_task(
                tokenizer,
                &files,
                &out,
                task,
                &options,
                &mut |_| {},
            )
            .map_err(|e| fail(e.to_string()))?;
            Ok(match stats {
                Some(s) => StepOutcome::Ran(format!(
                    "{} documents, {} tokens from {} files",
                    s.documents_out,
                    s.tokens,
                    s.files.len()
                )),
                None => StepOutcome::Skipped,
            })
        }
        Stage::ChatSynth => {
            use crate::chat::synth::{load_texts, synthesize};
            let texts = paths(recipe, step.texts.as_deref().unwrap_or_default())?;
            let texts = load_texts(&texts).map_err(|e| fail(e.to_string()))?;
            let n = step.conversations.unwrap_or(0);
            let (changed, stats) = synthesize(&texts, n, step.seed.unwrap_or(0), &out)
                .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                !changed,
                format!(
                    "{} conversations, {} messages from {} texts",
                    stats.conversations, stats.messages, stats.texts
                ),
            ))
        }
        Stage::Chat => {
            use crate::chat::stage::{ChatOptions, chat_task};
            use crate::chat::template::{ChatEncoder, ChatTokens};
            let tokens = match &step.tokenizer_config {
                Some(path) => ChatTokens::from_tokenizer_config(&recipe.path(path)?)
                    .map_err(|e| fail(e.to_string()))?,
                None => ChatTokens::llama3(),
            };
            let tokenizer = tokenizer(recipe, step, tokenizers)?;
            let encoder = ChatEncoder::new(tokenizer, &tokens).map_err(|e| fail(e.to_string()))?;
            let inputs = paths(recipe, step.inputs.as_deref().unwrap_or_default())?;
            crate::task::check_apart(&out, &inputs).map_err(|e| fail(e.to_string()))?;
            let files =
                crate::tokenize::stage::input_files(&inputs).map_err(|e| fail(e.to_string()))?;
            let options = ChatOptions {
                domain: step.domain.clone().unwrap_or_else(|| folder_name(&out)),
                size_limit: step.size_limit.unwrap_or(prolong_mds::DEFAULT_SIZE_LIMIT),
                tokenizer_hash: crate::tokenize::stage::tokenizer_hash(&tokenizer_path(
                    recipe, step,
                )?)
                .map_err(|e| fail(e.to_string()))?,
            };
            let outcome = chat_task(&encoder, &files, &out, task, &options, &mut |_| {})
                .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                outcome.skipped,
                format!(
                    "{} conversations, {} tokens ({} trained on)",
                    outcome.stats.conversations_out,
                    outcome.stats.tokens,
                    outcome.stats.trained_tokens
                ),
            ))
        }
        Stage::Filter => {
            let inputs = paths(recipe, step.inputs.as_deref().unwrap_or_default())?;
            let options = crate::filter::FilterOptions {
                min_tokens: step.min_tokens.unwrap_or(0),
                max_tokens: step.max_tokens,
                size_limit: step.size_limit,
            };
            let outcome = crate::filter::filter_task(&inputs, &out, task, &options, &mut |_, _| {})
                .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                outcome.skipped,
                format!(
                    "{} of {} documents kept",
                    outcome.stats.documents_out, outcome.stats.documents_in
                ),
            ))
        }
        Stage::Sample => {
            let mut sources = Vec::new();
            for s in step.sources.as_deref().unwrap_or_default() {
                let path = recipe.path(&s.path)?;
                let name = match &s.name {
                    Some(n) => n.clone(),
                    None => path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                sources.push(crate::sample::Source {
                    name,
                    path,
                    share: s.share,
                });
            }
            let options = crate::sample::SampleOptions {
                total_tokens: step.tokens.unwrap_or(0),
                seed: step.seed.unwrap_or(0),
                size_limit: step.size_limit,
            };
            let outcome =
                crate::sample::sample_task(&sources, &out, task, &options, &mut |_, _| {})
                    .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                outcome.skipped,
                format!(
                    "{} tokens of {} requested",
                    outcome.report.achieved_tokens, outcome.report.total_tokens
                ),
            ))
        }
        Stage::Pack => {
            let inputs = paths(recipe, step.inputs.as_deref().unwrap_or_default())?;
            let options = pack_options(recipe, step)?;
            let report = crate::pack::run_task(&inputs, &out, &options, task, &mut |_| {})
                .map_err(|e| fail(e.to_string()))?;
            Ok(ran(
                report.skipped,
                format!(
                    "{} sequences of {} tokens",
                    report.record.stats.sequences, options.seq_len
                ),
            ))
        }
        Stage::Mix => {
            use crate::mix::{Preset, StreamSpec, build_manifest, preset_streams, write_manifest};
            let (streams, preset, missing) = match &step.preset {
                Some(name) => {
                    let preset = Preset::from_name(name).ok_or_else(|| {
                        fail(format!(
                            "unknown preset {name:?} (prolong-64k, prolong-512k)"
                        ))
                    })?;
                    let root = recipe.path(step.root.as_deref().unwrap_or_default())?;
                    let (streams, missing) =
                        preset_streams(preset, &root, step.allow_missing.unwrap_or(false))
                            .map_err(|e| fail(e.to_string()))?;
                    (streams, Some(preset), missing)
                }
                None => {
                    let mut streams = Vec::new();
                    for s in step.streams.as_deref().unwrap_or_default() {
                        let path = recipe.path(&s.path)?;
                        let name = s.name.clone().unwrap_or_else(|| {
                            path.file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        });
                        streams.push(StreamSpec {
                            name,
                            path,
                            proportion: s.proportion,
                        });
                    }
                    (streams, None, Vec::new())
                }
            };
            let mut manifest =
                build_manifest(&streams, step.sequence_length).map_err(|e| fail(e.to_string()))?;
            manifest.preset = preset.map(|p| p.name().to_string());
            manifest.missing = missing;
            // Rewritten only when it would change (streams redone or edited).
            let dir = out.parent().map(Path::to_path_buf).unwrap_or_default();
            let text = manifest.render(&dir).map_err(|e| fail(e.to_string()))?;
            if std::fs::read_to_string(&out).is_ok_and(|old| old == text) {
                return Ok(StepOutcome::Skipped);
            }
            write_manifest(&manifest, &out).map_err(|e| fail(e.to_string()))?;
            Ok(StepOutcome::Ran(format!(
                "{} streams, sequence length {}, {} samples",
                manifest.streams.len(),
                manifest.sequence_length,
                manifest.total_samples
            )))
        }
    }
}

/// The output path of a step, resolved.
pub fn step_out(recipe: &Recipe, step: &Step) -> Result<PathBuf, RecipeError> {
    recipe.path(&step.out)
}
