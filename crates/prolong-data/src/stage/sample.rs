//! `sample`: documents drawn from tokenized sources to token shares of a
//! budget (see [`crate::sample`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::folder_name;
use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::StageError;
use crate::sample::{SampleOptions, Source, sample_task};

/// One source: `[NAME=]DIR@SHARE` on the command line, `{ name, path,
/// share }` in a recipe.
#[derive(Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SampleSourceSpec {
    /// The output folder's name (default: the path's folder name).
    pub name: Option<String>,
    pub path: PathBuf,
    pub share: f64,
}

impl std::str::FromStr for SampleSourceSpec {
    type Err = StageError;

    fn from_str(arg: &str) -> Result<Self, StageError> {
        let s = Source::parse(arg)?;
        Ok(SampleSourceSpec {
            name: Some(s.name),
            path: s.path,
            share: s.share,
        })
    }
}

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SampleStep {
    /// Sources, [NAME=]DIR@SHARE.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<SampleSourceSpec>,
    /// Total token budget.
    #[arg(long)]
    pub tokens: u64,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the draw.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub seed: u64,
    /// MDS shard size limit in bytes (default: the input's).
    #[arg(long)]
    pub size_limit: Option<u64>,
}

impl SampleStep {
    pub fn options(&self) -> SampleOptions {
        SampleOptions {
            total_tokens: self.tokens,
            seed: self.seed,
            size_limit: self.size_limit,
        }
    }

    /// The sources, each path through `path` (a recipe's: variables
    /// expanded, relative to its folder).
    pub fn sources<E>(
        &self,
        path: impl Fn(&Path) -> Result<PathBuf, E>,
    ) -> Result<Vec<Source>, E> {
        self.sources
            .iter()
            .map(|s| {
                let path = path(&s.path)?;
                Ok(Source {
                    name: s.name.clone().unwrap_or_else(|| folder_name(&path)),
                    path,
                    share: s.share,
                })
            })
            .collect()
    }
}

impl Stage for SampleStep {
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let sources = self.sources(|p| cx.path(p))?;
        let options = self.options();
        let outcome = or_fail(sample_task(&sources, cx.task, &options, &mut |_, _| {}))?;
        let report = &outcome.report;
        summary(outcome.skipped, || {
            format!("{} tokens of {} requested", report.achieved_tokens, report.total_tokens)
        })
    }

    /// The last task merges each source's index and writes sample.json
    /// itself.
    fn finish(&self, _: &StepContext<'_>) -> StepResult<()> {
        Ok(())
    }
}
