//! `filter`: keep the tokenized documents whose length is in a range (see
//! [`crate::filter`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Stage, StepContext, StepResult, or_fail};
use crate::filter::{FilterOptions, filter_task};
use crate::task::TaskSpec;

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
    const NAME: &'static str = "filter";
    const SHARDED: bool = true;

    fn out(&self) -> &Path {
        &self.out
    }

    fn run_task(
        &self,
        cx: &mut StepContext<'_>,
        out: &Path,
        task: TaskSpec,
    ) -> StepResult<Option<String>> {
        let inputs = cx.paths(&self.inputs)?;
        let outcome = or_fail(filter_task(
            &inputs,
            out,
            task,
            &self.options(),
            &mut |_, _| {},
        ))?;
        Ok((!outcome.skipped).then(|| {
            format!(
                "{} of {} documents kept",
                outcome.stats.documents_out, outcome.stats.documents_in
            )
        }))
    }
}
