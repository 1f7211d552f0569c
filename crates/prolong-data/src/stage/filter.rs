//! `filter`: keep the tokenized documents whose length is in a range (see
//! [`crate::filter`]).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::filter::{FilterOptions, filter_task};

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterStep {
    /// Input tokenized MDS datasets.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output dataset folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Drop documents shorter than this (reason too_short).
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub min_tokens: u64,
    /// Drop documents longer than this (reason too_long; default: no bound).
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// MDS shard size limit in bytes (default: the input's).
    #[arg(long)]
    pub size_limit: Option<u64>,
}

/// The MDS shard size limit of the stages that write new samples.
pub(super) fn size_limit() -> u64 {
    prolong_mds::DEFAULT_SIZE_LIMIT
}

impl FilterStep {
    pub fn options(&self) -> FilterOptions {
        FilterOptions {
            min_tokens: self.min_tokens,
            max_tokens: self.max_tokens,
            size_limit: self.size_limit,
        }
    }
}

impl Stage for FilterStep {
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let inputs = cx.paths(&self.inputs)?;
        let options = self.options();
        let outcome = or_fail(filter_task(&inputs, cx.task, &options, &mut |_, _| {}))?;
        let stats = &outcome.stats;
        summary(outcome.skipped, || {
            format!("{} of {} documents kept", stats.counts.documents_out, stats.counts.documents_in)
        })
    }
}
