//! `chat`: conversations → MDS {domain, input_ids, length, mask} in the
//! Llama-3 chat format (see [`crate::chat::stage`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::folder_name;
use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::chat::stage::{ChatOptions, chat_task};
use crate::chat::template::{ChatEncoder, ChatTokens};

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatStep {
    /// Input files or folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output dataset folder.
    #[arg(long)]
    pub out: PathBuf,
    /// HF tokenizer.json (a recipe's default: its top-level `tokenizer`).
    #[arg(long, required = true)]
    pub tokenizer: Option<PathBuf>,
    /// HF tokenizer_config.json whose bos_token to use (default: Llama-3's tokens).
    #[arg(long)]
    pub tokenizer_config: Option<PathBuf>,
    /// The domain column of every sample (default: the output folder's name).
    #[arg(long)]
    pub domain: Option<String>,
    /// MDS shard size limit in bytes.
    #[arg(long, default_value_t = prolong_mds::DEFAULT_SIZE_LIMIT)]
    #[serde(default = "super::filter::size_limit")]
    pub size_limit: u64,
}

impl ChatStep {
    /// The library's options: `out` and the tokenizer's hash resolved.
    pub fn options(&self, out: &Path, tokenizer_hash: String) -> ChatOptions {
        ChatOptions {
            domain: self.domain.clone().unwrap_or_else(|| folder_name(out)),
            size_limit: self.size_limit,
            tokenizer_hash,
        }
    }
}

impl Stage for ChatStep {
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let (task, out) = (cx.task, cx.task.out);
        let tokens = match &self.tokenizer_config {
            Some(path) => or_fail(ChatTokens::from_tokenizer_config(&cx.path(path)?))?,
            None => ChatTokens::llama3(),
        };
        let hash = cx.tokenizer_hash(self.tokenizer.as_deref())?;
        let inputs = cx.paths(&self.inputs)?;
        let tokenizer = cx.tokenizer(self.tokenizer.as_deref())?;
        let encoder = or_fail(ChatEncoder::new(tokenizer, &tokens))?;
        or_fail(crate::task::check_apart(out, &inputs))?;
        let files = or_fail(crate::tokenize::stage::input_files(&inputs))?;
        let options = self.options(out, hash);
        let outcome = or_fail(chat_task(&encoder, &files, task, &options, &mut |_| {}))?;
        let stats = &outcome.stats;
        summary(outcome.skipped, || {
            format!(
                "{} conversations, {} tokens ({} trained on)",
                stats.conversations_out, stats.tokens, stats.trained_tokens
            )
        })
    }
}
