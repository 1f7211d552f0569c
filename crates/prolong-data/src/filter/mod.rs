//! The filter stage: keeps the tokenized documents whose length lies in
//! `[min_tokens, max_tokens]` (the recipe keeps books, and code repositories,
//! of at least 64K = 65,536 tokens). Samples are copied with the input's
//! columns, encodings, compression and hashes; only their length is read.
//!
//! Tasks are dealt input *shards*, not input datasets: shard `i` of the
//! concatenated inputs (datasets in the order given, shards in index order)
//! goes to task `i % N`, so one large dataset still spreads over every task.
//! Output layout of a `--rank R --world-size N` run (see [`crate::task`]):
//!
//! ```text
//! OUT/procR-N/index.json, shard.*.mds    task R's kept documents, in input order
//! OUT/procR-N.stats.json                 FilterStats
//! OUT/procR-N.done                       completion marker, last
//! OUT/index.json                         merged once every task is done
//! ```
//!
//! A task whose marker exists is skipped (after checking that it was run
//! with the same bounds and inputs); one without is redone from scratch,
//! which gives byte-identical output.

pub mod input;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::StageError;
use crate::task::{InOutCounts, LengthHistogram, OnProgress, Task, TaskHeader};
use input::{DocCopier, for_each_doc, plan_shards};

/// The recipe's minimum length of long documents (books, code repositories).
pub const LONG_MIN_TOKENS: u64 = 65_536;

/// Drop reasons, as they appear in the stats.
pub const TOO_SHORT: &str = "too_short";
pub const TOO_LONG: &str = "too_long";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOptions {
    /// Documents shorter than this are dropped (`too_short`).
    pub min_tokens: u64,
    /// Documents longer than this are dropped (`too_long`); `None`: no bound.
    pub max_tokens: Option<u64>,
    /// MDS shard size limit in bytes; `None`: the input's.
    pub size_limit: Option<u64>,
}

/// What a task's marker records (see [`Task::check_output`]).
#[derive(Serialize)]
struct FilterSettings<'a> {
    inputs: &'a [PathBuf],
    #[serde(flatten)]
    options: &'a FilterOptions,
}

impl FilterOptions {
    /// `None` when a document of `length` tokens is kept, else the reason.
    pub fn drop_reason(&self, length: u64) -> Option<&'static str> {
        if length < self.min_tokens {
            Some(TOO_SHORT)
        } else if self.max_tokens.is_some_and(|max| length > max) {
            Some(TOO_LONG)
        } else {
            None
        }
    }
}

/// Documents and tokens of one drop reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub documents: u64,
    pub tokens: u64,
}

/// What one task did: its stats file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterStats {
    #[serde(flatten)]
    pub header: TaskHeader,
    pub min_tokens: u64,
    pub max_tokens: Option<u64>,
    /// The input datasets, as given.
    pub inputs: Vec<PathBuf>,
    /// This task's input shards, `dataset/basename`.
    pub shards: Vec<String>,
    #[serde(flatten)]
    pub counts: InOutCounts,
    /// By reason: `too_short`, `too_long` (both always present).
    pub dropped: BTreeMap<String, Dropped>,
    /// Lengths of the kept documents.
    pub length_histogram: LengthHistogram,
    /// Lengths of every input document.
    pub length_histogram_in: LengthHistogram,
}

impl FilterStats {
    /// Sums the stats of several tasks (for a run's summary).
    pub fn merge(&mut self, other: &FilterStats) {
        self.shards.extend(other.shards.iter().cloned());
        self.counts.add(&other.counts);
        for (reason, d) in &other.dropped {
            let e = self.dropped.entry(reason.clone()).or_default();
            e.documents += d.documents;
            e.tokens += d.tokens;
        }
        self.length_histogram.merge(&other.length_histogram);
        self.length_histogram_in.merge(&other.length_histogram_in);
    }
}

/// What [`filter_task`] did.
#[derive(Debug, Clone)]
pub struct FilterOutcome {
    pub stats: FilterStats,
    /// The task had been completed before and was not redone.
    pub skipped: bool,
    /// Every task of the run is complete and `OUT/index.json` was merged.
    pub merged: bool,
}

/// Runs task `task` of a filter run over `inputs` (tokenized MDS datasets)
/// into its folder; see the module docs. `on_progress` counts the samples
/// read of the task's shards.
pub fn filter_task(
    inputs: &[PathBuf],
    task: Task<'_>,
    options: &FilterOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<FilterOutcome, StageError> {
    if inputs.is_empty() {
        return Err(StageError::Settings("no input datasets".into()));
    }
    if let Some(max) = options.max_tokens
        && max < options.min_tokens
    {
        return Err(StageError::Settings(format!(
            "--max-tokens {max} is below --min-tokens {}",
            options.min_tokens
        )));
    }
    task.spec.check_world_size([task.out])?;
    let settings = FilterSettings { inputs, options };
    task.check_output(inputs, &settings)?;
    if task.is_done() {
        let changed = |reason: String| StageError::changed(task, reason);
        let stats: FilterStats = task
            .read_stats()
            .ok_or_else(|| changed("its stats file is unreadable".into()))?;
        if (stats.min_tokens, stats.max_tokens) != (options.min_tokens, options.max_tokens) {
            return Err(changed(format!(
                "it kept [{}, {}], this run asks [{}, {}]",
                stats.min_tokens,
                bound(stats.max_tokens),
                options.min_tokens,
                bound(options.max_tokens)
            )));
        }
        if stats.inputs != inputs {
            return Err(changed(format!("it read {:?}", stats.inputs)));
        }
        let merged = task.merge_if_complete()?;
        return Ok(FilterOutcome {
            stats,
            skipped: true,
            merged,
        });
    }

    let shards = plan_shards(inputs)?;
    let Some(first) = shards.first() else {
        return Err(StageError::Settings(format!(
            "the inputs {inputs:?} hold no shards"
        )));
    };
    let dir = task.clear_output()?;
    let mut kept = DocCopier::create(&dir, first, options.size_limit)?;
    let mut stats = FilterStats {
        header: task.spec.header(),
        min_tokens: options.min_tokens,
        max_tokens: options.max_tokens,
        inputs: inputs.to_vec(),
        dropped: [TOO_SHORT, TOO_LONG]
            .into_iter()
            .map(|r| (r.to_string(), Dropped::default()))
            .collect(),
        ..Default::default()
    };
    let mine: Vec<_> = task.spec.take(&shards).collect();
    let total: u64 = mine.iter().map(|s| s.samples()).sum();
    let mut done = 0;
    let mut buf = Vec::new();
    on_progress(0, total);
    for shard in mine {
        stats.shards.push(shard.label());
        for_each_doc(shard, &mut buf, |i, doc| {
            stats.counts.documents_in += 1;
            stats.counts.tokens_in += doc.length;
            stats.length_histogram_in.add(doc.length);
            match options.drop_reason(doc.length) {
                Some(reason) => {
                    let d = stats.dropped.entry(reason.into()).or_default();
                    d.documents += 1;
                    d.tokens += doc.length;
                }
                None => kept.copy(shard, i, doc)?,
            }
            Ok(())
        })?;
        done += shard.samples();
        on_progress(done, total);
    }
    let kept = kept.finish()?;
    stats.counts.documents_out = kept.documents;
    stats.counts.tokens_out = kept.tokens;
    stats.length_histogram = kept.histogram;
    task.complete(&stats, &settings)?;
    let merged = task.merge_if_complete()?;
    Ok(FilterOutcome {
        stats,
        skipped: false,
        merged,
    })
}

fn bound(max: Option<u64>) -> String {
    max.map_or("∞".into(), |m| m.to_string())
}
