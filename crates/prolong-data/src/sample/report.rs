//! What a run reports: the global plan per source (`sample.json`) and each
//! task's part (its stats file).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{SampleOptions, Source};
use crate::task::{InOutCounts, LengthHistogram, TaskHeader};

/// What was asked of one source and what it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub name: String,
    pub path: PathBuf,
    /// The share as given.
    pub share: f64,
    /// share / Σ shares.
    pub requested_share: f64,
    /// round(total × requested_share).
    pub target_tokens: u64,
    pub achieved_tokens: u64,
    /// achieved_tokens / Σ achieved_tokens.
    pub achieved_share: f64,
    /// achieved − target (negative: under).
    pub deviation_tokens: i64,
    /// How far the whole source falls short of the target (0: it did not).
    pub shortfall_tokens: u64,
    pub documents: u64,
    pub available_documents: u64,
    pub available_tokens: u64,
}

/// `OUT/sample.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    pub seed: u64,
    pub total_tokens: u64,
    pub achieved_tokens: u64,
    pub rule: String,
    pub sources: Vec<SourceReport>,
}

pub(super) const RULE: &str = "target = round(total * share / sum(shares)); whole documents in seeded random \
                    order while they fit, then the first overshooting one if that lands closer; \
                    no truncation, no repetition";

/// This task's part of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSourceStats {
    pub name: String,
    /// Documents and tokens of this task's input shards of the source.
    pub documents_in: u64,
    pub tokens_in: u64,
    /// Those of them the plan takes: what this task wrote.
    pub documents_out: u64,
    pub tokens_out: u64,
}

impl TaskSourceStats {
    /// The same counts in the form of a task's totals (the fields of a
    /// source's part stand in another order in the stats file).
    pub fn counts(&self) -> InOutCounts {
        InOutCounts {
            documents_in: self.documents_in,
            documents_out: self.documents_out,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
        }
    }
}

/// What one task did: its stats file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleTaskStats {
    #[serde(flatten)]
    pub header: TaskHeader,
    /// This task's input shards, `dataset/basename`.
    pub shards: Vec<String>,
    pub sources: Vec<TaskSourceStats>,
    #[serde(flatten)]
    pub counts: InOutCounts,
    /// Lengths of the documents this task wrote.
    pub length_histogram: LengthHistogram,
    /// The global plan: the same in every task of the run.
    pub report: SampleReport,
}

pub(super) fn same_request(
    report: &SampleReport,
    sources: &[Source],
    options: &SampleOptions,
) -> bool {
    report.seed == options.seed
        && report.total_tokens == options.total_tokens
        && report.sources.len() == sources.len()
        && report.sources.iter().zip(sources).all(|(r, s)| {
            // serde_json reads floats back to within an ulp or so.
            r.name == s.name
                && r.path == s.path
                && (r.share - s.share).abs() <= 1e-12 * s.share.abs().max(1.0)
        })
}
