//! `chat-synth`: a chat set generated from plain texts, one JSONL file (see
//! [`crate::chat::synth`]).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::chat::synth::{load_texts, synthesize};

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatSynthStep {
    /// Text files (.txt, .md) or folders of them.
    #[arg(long, required = true, num_args = 1..)]
    pub texts: Vec<PathBuf>,
    /// How many conversations.
    #[arg(long)]
    pub conversations: u64,
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub seed: u64,
    /// Output file (.jsonl or .jsonl.zst).
    #[arg(long)]
    pub out: PathBuf,
}

impl Stage for ChatSynthStep {
    /// The file is rewritten only when it would change.
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let texts = or_fail(load_texts(&cx.paths(&self.texts)?))?;
        let (changed, stats) =
            or_fail(synthesize(&texts, self.conversations, self.seed, cx.task.out))?;
        summary(!changed, || {
            format!(
                "{} conversations, {} messages from {} texts",
                stats.conversations, stats.messages, stats.texts
            )
        })
    }
}
