//! The sample stage: draws whole documents from several tokenized sources to
//! token shares of a total budget (ShortMix: FineWeb 25, FineWeb-Edu 25,
//! Wikipedia, Tulu-v2, StackExchange, ArXiv, OpenWebMath 10 each), seeded.
//!
//! # The rule
//!
//! * Each source's target is `round(total × share / Σ shares)` tokens (the
//!   targets may miss `total` by a token or so of rounding).
//! * A source's documents are visited in a seeded random order (Fisher–Yates
//!   over SplitMix64, seeded by the seed and the source's name, so a source's
//!   draw does not depend on the other sources or the argument order).
//!   Documents are taken whole while they fit under the target; at the first
//!   document that would overshoot, it is taken if that lands closer to the
//!   target than stopping (a tie stops), and the walk ends. So
//!   `|achieved − target| ≤ ½ × that document's length`, and the documents
//!   taken are a uniform random subset, not biased towards short ones.
//! * Nothing is truncated or repeated: a source smaller than its target is
//!   taken whole and its shortfall reported.
//!
//! # Tasks (`--rank R --world-size N`)
//!
//! The draw is global: every task reads the lengths of *every* document of
//! every source (the first pass; lengths only, no copies) and computes the
//! same plan, since it depends only on the inputs and the seed. Task R then
//! writes only its part: the documents taken from input shards R, R+N, … of
//! the concatenated sources (sources in the order given, shards in index
//! order), in input order, with the input's columns and encodings. The
//! union of the N parts is exactly the plan, so shares are as exact for N
//! tasks as for one, and the documents and tokens do not depend on N; only
//! their order does (merged in rank order). The price is that each task
//! reads every shard's lengths once.
//!
//! # Output
//!
//! ```text
//! OUT/<name>/procR-N/index.json, shard.*.mds   task R's documents of that source
//! OUT/procR-N.stats.json                       SampleTaskStats (with the global report)
//! OUT/procR-N.done                             completion marker, last
//! OUT/<name>/index.json                        merged once every task is done
//! OUT/sample.json                              SampleReport, after the merged indices
//! ```
//!
//! A task whose marker exists is skipped (after checking its stats record
//! the same request); one without is redone from scratch. Same inputs, seed
//! and N: byte-identical outputs.

mod draw;
mod report;
mod run;
mod source;
mod write;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StageError;
use crate::task::{OnProgress, TaskSpec};

pub use report::{SampleReport, SampleTaskStats, SourceReport, TaskSourceStats};
pub use run::sample_task;
pub use source::{Source, split_weighted, targets};

pub const REPORT_FILE: &str = "sample.json";

/// ShortMix's token shares (percent), by source (docs/recipe.md, "Corpus").
pub const SHORTMIX: [(&str, f64); 7] = [
    ("fineweb", 25.0),
    ("fineweb-edu", 25.0),
    ("wikipedia", 10.0),
    ("tulu-v2", 10.0),
    ("stackexchange", 10.0),
    ("arxiv", 10.0),
    ("openwebmath", 10.0),
];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleOptions {
    /// The total token budget.
    pub total_tokens: u64,
    pub seed: u64,
    /// MDS shard size limit in bytes; `None`: the input's.
    pub size_limit: Option<u64>,
}

/// What [`sample_task`] did.
#[derive(Debug, Clone)]
pub struct SampleOutcome {
    /// The global plan's report.
    pub report: SampleReport,
    /// This task's part.
    pub stats: SampleTaskStats,
    /// The task had been completed before with the same request: nothing
    /// was redone.
    pub skipped: bool,
    /// Every task of the run is complete: the merged indices and
    /// `sample.json` are written.
    pub merged: bool,
}

/// The whole stage as one task (task 0 of 1).
pub fn sample(
    sources: &[Source],
    out: &Path,
    options: &SampleOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<SampleOutcome, StageError> {
    let task = TaskSpec {
        rank: 0,
        world_size: 1,
    };
    sample_task(sources, task.at(out), options, on_progress)
}

#[cfg(test)]
mod tests {
    //! Source arguments, targets and the seeded draw's random numbers.

    use std::path::PathBuf;

    use prolong_rng::SplitMix64;

    use super::*;

    #[test]
    fn sources_parse_with_and_without_names() {
        let s = Source::parse("data/tok/fineweb@25").unwrap();
        assert_eq!((s.name.as_str(), s.share), ("fineweb", 25.0));
        assert_eq!(s.path, PathBuf::from("data/tok/fineweb"));
        let s = Source::parse("web=/x/y@0.5").unwrap();
        assert_eq!((s.name.as_str(), s.path.to_str().unwrap()), ("web", "/x/y"));
        assert!(Source::parse("data/tok/fineweb").is_err());
        assert!(Source::parse("a@b").is_err());
    }

    /// Sample's sources and mix's streams share one parser: the same messages
    /// (the value named after the command's), but a DIR with no last component
    /// is an error for a source and its own name for a stream.
    #[test]
    fn sources_and_streams_refuse_alike() {
        let source = |arg: &str| Source::parse(arg).unwrap_err().to_string();
        let stream = |arg: &str| crate::mix::StreamSpec::parse(arg).map_err(|e| e.to_string());
        assert_eq!(source("x"), "\"x\": expected [NAME=]DIR@SHARE");
        assert_eq!(
            stream("x").unwrap_err(),
            "\"x\": expected [NAME=]DIR@PROPORTION"
        );
        let nan = "\"a@b\": the text after the last '@' is not a number";
        assert_eq!(
            (source("a@b"), stream("a@b").unwrap_err()),
            (nan.into(), nan.into())
        );
        let unnamed = "cannot name the source after its path; use NAME=DIR@SHARE";
        assert_eq!(source("..@1"), format!("\"..@1\": {unnamed}"));
        assert_eq!(source("@1"), format!("\"@1\": {unnamed}"));
        let s = crate::mix::StreamSpec::parse("..@1").unwrap();
        assert_eq!((s.name.as_str(), s.path.to_str().unwrap()), ("..", ".."));
        assert_eq!(stream("@1").unwrap_err(), "\"@1\": empty path");
        assert_eq!(source("n=@1"), "\"n=@1\": empty path");
    }

    #[test]
    fn targets_round_each_share() {
        let sources: Vec<Source> = SHORTMIX
            .iter()
            .map(|(n, s)| Source {
                name: n.to_string(),
                path: PathBuf::from(n),
                share: *s,
            })
            .collect();
        let t: Vec<u64> = targets(&sources, 1001)
            .unwrap()
            .iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(t, vec![250, 250, 100, 100, 100, 100, 100]);
    }

    #[test]
    fn below_is_in_range_and_seeded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for n in 1..1000 {
            let x = a.below(n);
            assert!(x < n);
            assert_eq!(x, b.below(n));
        }
    }
}
