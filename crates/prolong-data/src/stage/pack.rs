//! `pack`: tokenized documents → fixed-length sequences, ProLong's packer
//! (see [`crate::pack`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Stage, StepContext, StepResult, or_fail, summary};
use crate::pack::PackOptions;
use crate::tokenize::{LLAMA3_BOS, LLAMA3_EOS};

/// `--bos ID`; in a recipe `bos = 128000`, `bos = true` (Llama-3's) or
/// `bos = false` (none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum TokenOrNone {
    Id(u32),
    Flag(bool),
}

impl TokenOrNone {
    /// The id to add, `default` for `true`, none for `false`.
    pub fn resolve(self, default: u32) -> Option<u32> {
        match self {
            TokenOrNone::Id(id) => Some(id),
            TokenOrNone::Flag(true) => Some(default),
            TokenOrNone::Flag(false) => None,
        }
    }
}

/// The command line takes an id (`--no-bos` says none).
impl std::str::FromStr for TokenOrNone {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TokenOrNone::Id)
    }
}

impl std::fmt::Display for TokenOrNone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenOrNone::Id(id) => write!(f, "{id}"),
            TokenOrNone::Flag(b) => write!(f, "{b}"),
        }
    }
}

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackStep {
    /// Tokenized MDS datasets (input_ids ndarray:uint32, optional mask),
    /// packed as one stream in the order given.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Tokens per sequence (N).
    #[arg(long, value_name = "N")]
    pub len: usize,
    /// Drop a document's tail carried into the next sequence when it is
    /// shorter than this.
    #[arg(long, value_name = "M", default_value_t = 1)]
    #[serde(default = "min_length")]
    pub min_length: usize,
    /// Cut documents into chunks of these lengths (the largest that fits),
    /// each packed into its own sub-dataset `{length}-{N}`.
    #[arg(long, value_name = "L1,L2,..", value_delimiter = ',')]
    #[serde(default)]
    pub split_by_lengths: Vec<usize>,
    /// Every sequence starts at a document start (overflow is dropped).
    #[arg(long)]
    #[serde(default)]
    pub intact: bool,
    /// BOS id added before each document (Llama-3's by default).
    #[arg(long, value_name = "ID", default_value_t = TokenOrNone::Id(LLAMA3_BOS.id))]
    #[serde(default = "bos")]
    pub bos: TokenOrNone,
    /// EOS id added after each document (Llama-3's by default).
    #[arg(long, value_name = "ID", default_value_t = TokenOrNone::Id(LLAMA3_EOS.id))]
    #[serde(default = "eos")]
    pub eos: TokenOrNone,
    /// Add no BOS.
    #[arg(long)]
    #[serde(skip)]
    pub no_bos: bool,
    /// Add no EOS.
    #[arg(long)]
    #[serde(skip)]
    pub no_eos: bool,
    /// Write into OUT/DOMAIN/ and set the domain column to it (default: the
    /// output root, domain ".", as ProLong's packer does).
    #[arg(long)]
    pub domain: Option<String>,
    /// Output shard compression (zstd, zstd:LEVEL); none by default.
    #[arg(long)]
    pub compression: Option<String>,
    /// Output shard size limit in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = prolong_mds::DEFAULT_SIZE_LIMIT)]
    #[serde(default = "super::filter::size_limit")]
    pub size_limit: u64,
}

fn min_length() -> usize {
    1
}
fn bos() -> TokenOrNone {
    TokenOrNone::Id(LLAMA3_BOS.id)
}
fn eos() -> TokenOrNone {
    TokenOrNone::Id(LLAMA3_EOS.id)
}

impl PackStep {
    pub fn options(&self) -> PackOptions {
        let token = |t: TokenOrNone, none: bool, default: u32| match none {
            true => None,
            false => t.resolve(default),
        };
        PackOptions {
            seq_len: self.len,
            min_length: self.min_length,
            split_by_lengths: self.split_by_lengths.clone(),
            intact: self.intact,
            bos: token(self.bos, self.no_bos, LLAMA3_BOS.id),
            eos: token(self.eos, self.no_eos, LLAMA3_EOS.id),
            domain: self.domain.clone(),
            size_limit: Some(self.size_limit),
            compression: self.compression.clone(),
        }
    }
}

impl Stage for PackStep {
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let inputs = cx.paths(&self.inputs)?;
        let options = self.options();
        let report = or_fail(crate::pack::run_task(&inputs, cx.task, &options, &mut |_| {}))?;
        let sequences = report.record.stats.sequences;
        summary(report.skipped, || {
            format!("{sequences} sequences of {} tokens", options.seq_len)
        })
    }

    fn finish(&self, cx: &StepContext<'_>) -> StepResult<()> {
        crate::pack::merge_if_complete(cx.task.out, &self.options(), cx.task.spec.world_size)
            .map_err(|e| super::StepError::Failed(format!("merge: {e}")))?;
        Ok(())
    }
}
