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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::input::{
    InputError, InputShard, copy_doc, create_writer, for_each_doc, plan_shards,
};
use crate::task::{LengthHistogram, TaskSpec, remove_file_if_present};
use prolong_rng::SplitMix64;

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

/// One source: a tokenized MDS dataset and its (unnormalised) token share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The output folder's name.
    pub name: String,
    pub path: PathBuf,
    pub share: f64,
}

impl Source {
    /// `[NAME=]DIR@SHARE`; the name defaults to DIR's last component. The
    /// split is at the last `@`.
    pub fn parse(arg: &str) -> Result<Source, SampleError> {
        let bad = |reason: &str| SampleError::Argument {
            arg: arg.into(),
            reason: reason.into(),
        };
        let (rest, share) = arg
            .rsplit_once('@')
            .ok_or_else(|| bad("expected [NAME=]DIR@SHARE"))?;
        let share: f64 = share
            .trim()
            .parse()
            .map_err(|_| bad("the text after the last '@' is not a number"))?;
        let (name, path) = match rest.split_once('=') {
            Some((name, path)) if !name.contains(['/', '\\']) => (name.to_string(), path),
            _ => {
                let name = Path::new(rest)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| {
                        bad("cannot name the source after its path; use NAME=DIR@SHARE")
                    })?;
                (name, rest)
            }
        };
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(Source {
            name,
            path: PathBuf::from(path),
            share,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleOptions {
    /// The total token budget.
    pub total_tokens: u64,
    pub seed: u64,
    /// MDS shard size limit in bytes; `None`: the input's.
    pub size_limit: Option<u64>,
}

/// What a task's marker records (see [`TaskSpec::check_output`]).
#[derive(Serialize)]
struct SampleSettings<'a> {
    sources: &'a [Source],
    #[serde(flatten)]
    options: &'a SampleOptions,
}

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

const RULE: &str = "target = round(total * share / sum(shares)); whole documents in seeded random \
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

/// What one task did: its stats file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleTaskStats {
    pub task: String,
    pub rank: usize,
    pub world_size: usize,
    /// This task's input shards, `dataset/basename`.
    pub shards: Vec<String>,
    pub sources: Vec<TaskSourceStats>,
    pub documents_in: u64,
    pub documents_out: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Lengths of the documents this task wrote.
    pub length_histogram: LengthHistogram,
    /// The global plan: the same in every task of the run.
    pub report: SampleReport,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
    #[error(transparent)]
    Output(#[from] crate::task::OutputError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{arg:?}: {reason}")]
    Argument { arg: String, reason: String },
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("source {name} ({path}): {reason}")]
    Source {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{out}: task {task} was completed with another request ({reason}); \
         use a fresh output folder or remove that one"
    )]
    Changed {
        out: PathBuf,
        task: String,
        reason: String,
    },
    #[error(
        "{dir}: holds {found}, from a run with another --world-size; \
         use a fresh output folder per world size"
    )]
    OtherWorldSize { dir: PathBuf, found: String },
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

/// Progress: documents read (every source's lengths, then this task's
/// shards) of the total.
pub type OnProgress<'a> = dyn FnMut(u64, u64) + 'a;

/// The targets: round(total × share / Σ shares), after checking the shares.
pub fn targets(sources: &[Source], total_tokens: u64) -> Result<Vec<(f64, u64)>, SampleError> {
    if sources.is_empty() {
        return Err(SampleError::Settings("no sources".into()));
    }
    for s in sources {
        if !s.share.is_finite() || s.share < 0.0 {
            return Err(SampleError::Settings(format!(
                "source {}: share {} must be finite and ≥ 0",
                s.name, s.share
            )));
        }
    }
    let sum: f64 = sources.iter().map(|s| s.share).sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return Err(SampleError::Settings(format!(
            "the shares sum to {sum}; at least one must be positive"
        )));
    }
    Ok(sources
        .iter()
        .map(|s| {
            let p = s.share / sum;
            (p, (total_tokens as f64 * p).round() as u64)
        })
        .collect())
}

/// The whole stage as one task (task 0 of 1).
pub fn sample(
    sources: &[Source],
    out: &Path,
    options: &SampleOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<SampleOutcome, SampleError> {
    let task = TaskSpec {
        rank: 0,
        world_size: 1,
    };
    sample_task(sources, out, task, options, on_progress)
}

/// Runs task `task` of the stage (see the module docs), then writes the
/// merged indices and `sample.json` if it finds every task complete.
pub fn sample_task(
    sources: &[Source],
    out: &Path,
    task: TaskSpec,
    options: &SampleOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<SampleOutcome, SampleError> {
    let targets = targets(sources, options.total_tokens)?;
    check_names(sources)?;
    check_world_size(out, sources, task)?;
    let settings = SampleSettings { sources, options };
    let inputs: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
    task.check_output(out, &inputs, &settings)?;
    if task.is_done(out) {
        let changed = |reason: &str| SampleError::Changed {
            out: out.to_path_buf(),
            task: task.name(),
            reason: reason.into(),
        };
        let stats: SampleTaskStats = task
            .read_stats(out)
            .ok_or_else(|| changed("its stats file is unreadable"))?;
        if !same_request(&stats.report, sources, options) {
            return Err(changed("other sources, shares, tokens or seed"));
        }
        let merged = finish_if_complete(out, sources, task)?;
        return Ok(SampleOutcome {
            report: stats.report.clone(),
            stats,
            skipped: true,
            merged,
        });
    }
    let plans = sources
        .iter()
        .map(|s| {
            let shards = plan_shards(std::slice::from_ref(&s.path))?;
            if shards.is_empty() {
                return Err(SampleError::Source {
                    name: s.name.clone(),
                    path: s.path.clone(),
                    reason: "holds no shards".into(),
                });
            }
            Ok(shards)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Redo from scratch; merged indices and a report of an earlier complete
    // run would vouch for parts being rewritten.
    remove_file_if_present(&out.join(REPORT_FILE))?;
    task.remove_stale_temps(out)?;
    for s in sources {
        remove_file_if_present(&out.join(&s.name).join(prolong_mds::INDEX_FILE))?;
    }

    // Shard g of the concatenated sources is task (g mod N)'s.
    let mut mine = Vec::with_capacity(plans.len());
    let mut first = 0;
    for shards in &plans {
        mine.push((first..first + shards.len()).map(|g| g % task.world_size == task.rank));
        first += shards.len();
    }
    let mine: Vec<Vec<bool>> = mine.into_iter().map(Iterator::collect).collect();
    let all_docs: u64 = plans.iter().flatten().map(InputShard::samples).sum();
    let my_docs: u64 = plans
        .iter()
        .zip(&mine)
        .flat_map(|(shards, mine)| shards.iter().zip(mine))
        .filter(|(_, m)| **m)
        .map(|(s, _)| s.samples())
        .sum();
    let mut progress = Progress {
        done: 0,
        total: all_docs + my_docs,
        f: on_progress,
    };
    (progress.f)(0, progress.total);

    let mut stats = SampleTaskStats {
        task: task.name(),
        rank: task.rank,
        world_size: task.world_size,
        shards: Vec::new(),
        sources: Vec::with_capacity(sources.len()),
        documents_in: 0,
        documents_out: 0,
        tokens_in: 0,
        tokens_out: 0,
        length_histogram: LengthHistogram::default(),
        report: SampleReport {
            seed: options.seed,
            total_tokens: options.total_tokens,
            achieved_tokens: 0,
            rule: RULE.into(),
            sources: Vec::with_capacity(sources.len()),
        },
    };
    for (((source, shards), mine), &(requested_share, target)) in
        sources.iter().zip(&plans).zip(&mine).zip(&targets)
    {
        let plan = draw(
            source,
            shards,
            requested_share,
            target,
            options,
            &mut progress,
        )?;
        let dir = out.join(&source.name).join(task.name());
        let part = write_part(source, shards, mine, &plan, &dir, options, &mut progress)?;
        stats.shards.extend(
            shards
                .iter()
                .zip(mine)
                .filter(|(_, m)| **m)
                .map(|(s, _)| s.label()),
        );
        stats.documents_in += part.stats.documents_in;
        stats.documents_out += part.stats.documents_out;
        stats.tokens_in += part.stats.tokens_in;
        stats.tokens_out += part.stats.tokens_out;
        stats.length_histogram.merge(&part.histogram);
        stats.sources.push(part.stats);
        stats.report.sources.push(plan.report);
    }
    let report = &mut stats.report;
    report.achieved_tokens = report.sources.iter().map(|r| r.achieved_tokens).sum();
    let achieved = report.achieved_tokens;
    for r in &mut report.sources {
        r.achieved_share = if achieved == 0 {
            0.0
        } else {
            r.achieved_tokens as f64 / achieved as f64
        };
    }
    task.complete(out, &stats, &settings)?;
    let merged = finish_if_complete(out, sources, task)?;
    Ok(SampleOutcome {
        report: stats.report.clone(),
        stats,
        skipped: false,
        merged,
    })
}

/// Source names are folder names under OUT, distinct, and not the report's.
fn check_names(sources: &[Source]) -> Result<(), SampleError> {
    for (i, s) in sources.iter().enumerate() {
        let ok = !s.name.is_empty()
            && s.name != "."
            && s.name != ".."
            && !s.name.contains(['/', '\\'])
            && s.name != REPORT_FILE;
        if !ok {
            return Err(SampleError::Settings(format!(
                "source name {:?} is not a folder name",
                s.name
            )));
        }
        if sources[..i].iter().any(|o| o.name == s.name) {
            return Err(SampleError::Settings(format!(
                "two sources are named {:?}; name them with NAME=DIR@SHARE",
                s.name
            )));
        }
    }
    Ok(())
}

/// Refuses markers (in OUT) or task folders (in OUT/<name>) of another world
/// size: the merged indices would pick them up.
fn check_world_size(out: &Path, sources: &[Source], task: TaskSpec) -> Result<(), SampleError> {
    let dirs = std::iter::once(out.to_path_buf()).chain(sources.iter().map(|s| out.join(&s.name)));
    for dir in dirs {
        if let Some(found) = task.other_world_size_entry(&dir) {
            return Err(SampleError::OtherWorldSize { dir, found });
        }
    }
    Ok(())
}

/// Once every task is done: each source's merged index.json, then
/// `sample.json`, the report as rank 0's stats file holds it (so its bytes
/// do not depend on which task writes it, nor on a float's trip through
/// JSON). Returns whether it found the run complete.
fn finish_if_complete(out: &Path, sources: &[Source], task: TaskSpec) -> Result<bool, SampleError> {
    let dirs: Vec<PathBuf> = sources.iter().map(|s| out.join(&s.name)).collect();
    if !task.merge_if_complete_in(out, &dirs)? {
        return Ok(false);
    }
    let report_path = out.join(REPORT_FILE);
    if !report_path.is_file() {
        let first = TaskSpec { rank: 0, ..task };
        let stats: SampleTaskStats = first.read_stats(out).ok_or_else(|| SampleError::Changed {
            out: out.to_path_buf(),
            task: first.name(),
            reason: "its stats file is unreadable".into(),
        })?;
        let json = serde_json::to_vec_pretty(&stats.report).expect("the report is plain data");
        prolong_mds::write_atomic(&report_path, &json)?;
    }
    Ok(true)
}

fn same_request(report: &SampleReport, sources: &[Source], options: &SampleOptions) -> bool {
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

struct Progress<'a, 'b> {
    done: u64,
    total: u64,
    f: &'a mut OnProgress<'b>,
}

impl Progress<'_, '_> {
    fn add(&mut self, n: u64) {
        self.done += n;
        (self.f)(self.done, self.total);
    }
}

/// One source's share of the global plan.
struct Plan {
    /// Every document's length, in input order.
    lengths: Vec<u32>,
    /// Whether the draw takes it.
    take: Vec<bool>,
    /// `achieved_share` is filled in once every source is drawn.
    report: SourceReport,
}

/// Reads every document's length and draws (see the module docs): the same
/// plan in every task.
fn draw(
    source: &Source,
    shards: &[InputShard],
    requested_share: f64,
    target: u64,
    options: &SampleOptions,
    progress: &mut Progress<'_, '_>,
) -> Result<Plan, SampleError> {
    let mut lengths: Vec<u32> = Vec::new();
    let mut buf = Vec::new();
    for shard in shards {
        for_each_doc(shard, &mut buf, |_, doc| {
            lengths.push(u32::try_from(doc.length).map_err(|_| InputError::BadInput {
                path: shard.dataset.clone(),
                reason: format!("a document of {} tokens", doc.length),
            })?);
            Ok(())
        })?;
        progress.add(shard.samples());
    }
    let n = u32::try_from(lengths.len()).map_err(|_| SampleError::Source {
        name: source.name.clone(),
        path: source.path.clone(),
        reason: "the document count does not fit 32 bits".into(),
    })?;
    let available_tokens: u64 = lengths.iter().map(|&l| l as u64).sum();

    let mut order: Vec<u32> = (0..n).collect();
    let mut rng =
        SplitMix64::new(options.seed ^ xxhash_rust::xxh3::xxh3_64(source.name.as_bytes()));
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut take = vec![false; lengths.len()];
    let mut achieved = 0u64;
    let mut documents = 0u64;
    for &i in &order {
        if achieved >= target {
            break;
        }
        let len = lengths[i as usize] as u64;
        let fits = achieved + len <= target;
        if fits || achieved + len - target < target - achieved {
            take[i as usize] = true;
            achieved += len;
            documents += 1;
        }
        if !fits {
            break;
        }
    }
    Ok(Plan {
        lengths,
        take,
        report: SourceReport {
            name: source.name.clone(),
            path: source.path.clone(),
            share: source.share,
            requested_share,
            target_tokens: target,
            achieved_tokens: achieved,
            achieved_share: 0.0,
            deviation_tokens: achieved as i64 - target as i64,
            shortfall_tokens: target.saturating_sub(available_tokens),
            documents,
            available_documents: n as u64,
            available_tokens,
        },
    })
}

/// What [`write_part`] wrote.
struct Part {
    stats: TaskSourceStats,
    histogram: LengthHistogram,
}

/// Copies the documents the plan takes from this task's shards (`mine`)
/// into `dir`, in input order; shards with nothing taken are not read.
fn write_part(
    source: &Source,
    shards: &[InputShard],
    mine: &[bool],
    plan: &Plan,
    dir: &Path,
    options: &SampleOptions,
    progress: &mut Progress<'_, '_>,
) -> Result<Part, SampleError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|err| SampleError::Io {
            path: dir.to_path_buf(),
            err,
        })?;
    }
    let mut writer = create_writer(dir, &shards[0], options.size_limit)?;
    let mut part = Part {
        stats: TaskSourceStats {
            name: source.name.clone(),
            ..Default::default()
        },
        histogram: LengthHistogram::default(),
    };
    let mut buf = Vec::new();
    let mut first = 0usize;
    for (shard, &mine) in shards.iter().zip(mine) {
        let docs = first..first + shard.samples() as usize;
        first = docs.end;
        if !mine {
            continue;
        }
        part.stats.documents_in += shard.samples();
        part.stats.tokens_in += plan.lengths[docs.clone()]
            .iter()
            .map(|&l| l as u64)
            .sum::<u64>();
        if plan.take[docs.clone()].contains(&true) {
            for_each_doc(shard, &mut buf, |i, doc| {
                if plan.take[docs.start + i] {
                    copy_doc(&mut writer, shard, i, doc)?;
                    part.stats.documents_out += 1;
                    part.stats.tokens_out += doc.length;
                    part.histogram.add(doc.length);
                }
                Ok(())
            })?;
        }
        progress.add(shard.samples());
    }
    writer.finish()?;
    Ok(part)
}

#[cfg(test)]
mod tests {
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
