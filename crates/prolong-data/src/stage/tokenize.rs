//! `tokenize`: documents → MDS {domain, input_ids, length} (see
//! [`crate::tokenize::stage`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::folder_name;
use super::{Stage, StepContext, StepResult, or_fail};
use crate::documents::{DEFAULT_TEXT_FIELD, Fields, GroupFields, Select};
use crate::recipe::HubSource;
use crate::tokenize::stage::{TokenizeOptions, finish_if_done, input_files, tokenize_task};

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizeStep {
    /// Input files or folders (a folder's `*.stats.json`, stages' bookkeeping, is not read).
    #[arg(required = true)]
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// Recipe only: a Hugging Face Hub dataset's files from the local HF
    /// cache, `{ hf = "org/name", revision = "main", files = ["glob"] }`
    /// (besides or instead of `inputs`).
    #[arg(skip)]
    pub source: Option<HubSource>,
    /// Output dataset folder.
    #[arg(long)]
    pub out: PathBuf,
    /// HF tokenizer.json (a recipe's default: its top-level `tokenizer`).
    #[arg(long, required = true)]
    pub tokenizer: Option<PathBuf>,
    /// The domain column of every document (default: the output folder's name).
    #[arg(long)]
    pub domain: Option<String>,
    /// JSON field holding the text.
    #[arg(long, default_value = DEFAULT_TEXT_FIELD)]
    #[serde(default = "text")]
    pub text_field: String,
    /// JSON field holding the id (used in reports).
    #[arg(long)]
    pub id_field: Option<String>,
    /// Keep only the rows whose field holds one of the values
    /// (SlimPajama's books: `{ field = "meta.redpajama_set_name", values =
    /// ["RedPajamaBook"] }`).
    #[command(flatten)]
    pub select: Option<Select>,
    /// One document per repository of per-file rows (The Stack v1: `{ repo =
    /// "max_stars_repo_name", path = "max_stars_repo_path" }`).
    #[command(flatten)]
    pub group_by_repo: Option<GroupFields>,
    /// MDS shard size limit in bytes.
    #[arg(long, default_value_t = prolong_mds::DEFAULT_SIZE_LIMIT)]
    #[serde(default = "super::filter::size_limit")]
    pub size_limit: u64,
}

fn text() -> String {
    DEFAULT_TEXT_FIELD.into()
}

impl TokenizeStep {
    /// The library's options: `out` and the tokenizer's hash resolved.
    pub fn options(&self, out: &Path, tokenizer_hash: String) -> TokenizeOptions {
        TokenizeOptions {
            domain: self.domain.clone().unwrap_or_else(|| folder_name(out)),
            fields: Fields {
                text: self.text_field.clone(),
                id: self.id_field.clone(),
                select: self.select.clone(),
                group: self.group_by_repo.clone(),
            },
            size_limit: self.size_limit,
            tokenizer_hash,
        }
    }

    /// The input files (hub files resolved) and options of a recipe step.
    fn plan(&self, cx: &StepContext<'_>, out: &Path) -> StepResult<(Vec<PathBuf>, TokenizeOptions)> {
        let mut inputs = cx.paths(&self.inputs)?;
        if let Some(hub) = &self.source {
            inputs.extend(or_fail(crate::hub::resolve(hub))?);
        }
        or_fail(crate::task::check_apart(out, &inputs))?;
        let files = or_fail(input_files(&inputs))?;
        let hash = cx.tokenizer_hash(self.tokenizer.as_deref())?;
        Ok((files, self.options(out, hash)))
    }
}

impl Stage for TokenizeStep {
    fn check(&self, name: &str) -> Result<(), (&'static str, String)> {
        if self.inputs.is_empty() && self.source.is_none() {
            return Err((
                "name",
                format!("step {name:?}: stage tokenize needs `inputs` or `source`"),
            ));
        }
        Ok(())
    }

    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let (task, out) = (cx.task, cx.task.out);
        // A completed task is skipped on its marker, after the checks and
        // merge of finish_if_done, before the tokenizer (the slow part of a
        // skip) is loaded.
        let (files, options) = self.plan(cx, out)?;
        if task.is_done() && or_fail(finish_if_done(&files, task, &options))? {
            return Ok(None);
        }
        let tokenizer = cx.tokenizer(self.tokenizer.as_deref())?;
        let stats = or_fail(tokenize_task(
            tokenizer,
            &files,
            task,
            &options,
            &mut |_| {},
        ))?;
        Ok(stats.map(|s| {
            format!(
                "{} documents, {} tokens from {} files",
                s.documents_out,
                s.tokens,
                s.files.len()
            )
        }))
    }
}
