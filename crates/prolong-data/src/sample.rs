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
//! * Kept documents are written in their input order (sequential reads; the
//!   trainer shuffles packed sequences anyway), with the input's columns and
//!   encodings.
//!
//! # Output
//!
//! ```text
//! OUT/<name>/index.json, shard.*.mds   the documents drawn from each source
//! OUT/sample.json                      SampleReport, written last
//! ```
//!
//! A re-run finding `sample.json` with the same request does nothing; any
//! other re-run redoes every source. Same inputs and seed: byte-identical
//! outputs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::input::{
    InputError, InputShard, copy_doc, create_writer, for_each_doc, plan_shards,
};

pub const REPORT_FILE: &str = "sample.json";

/// ShortMix's token shares (percent), by source, from recipe.md.
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

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
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
}

/// What [`sample`] did.
#[derive(Debug, Clone)]
pub struct SampleOutcome {
    pub report: SampleReport,
    /// A report of the same request was there: nothing was redone.
    pub skipped: bool,
}

/// Progress: documents read (two passes over every source) of the total.
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

/// Runs the stage (see the module docs).
pub fn sample(
    sources: &[Source],
    out: &Path,
    options: &SampleOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<SampleOutcome, SampleError> {
    let targets = targets(sources, options.total_tokens)?;
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
    let report_path = out.join(REPORT_FILE);
    if let Ok(bytes) = std::fs::read(&report_path)
        && let Ok(report) = serde_json::from_slice::<SampleReport>(&bytes)
        && same_request(&report, sources, options)
    {
        return Ok(SampleOutcome {
            report,
            skipped: true,
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
    match std::fs::remove_file(&report_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(SampleError::Io {
                path: report_path,
                err: e,
            });
        }
        _ => {}
    }
    let total_docs: u64 = plans.iter().flatten().map(InputShard::samples).sum();
    let mut progress = Progress {
        done: 0,
        total: 2 * total_docs,
        f: on_progress,
    };
    (progress.f)(0, progress.total);
    let mut reports = Vec::with_capacity(sources.len());
    for ((source, shards), &(requested_share, target)) in sources.iter().zip(&plans).zip(&targets) {
        reports.push(sample_source(
            source,
            shards,
            requested_share,
            target,
            out,
            options,
            &mut progress,
        )?);
    }
    let achieved: u64 = reports.iter().map(|r| r.achieved_tokens).sum();
    for r in &mut reports {
        r.achieved_share = if achieved == 0 {
            0.0
        } else {
            r.achieved_tokens as f64 / achieved as f64
        };
    }
    let report = SampleReport {
        seed: options.seed,
        total_tokens: options.total_tokens,
        achieved_tokens: achieved,
        rule: RULE.into(),
        sources: reports,
    };
    let json = serde_json::to_vec_pretty(&report).expect("the report is plain data");
    prolong_mds::write_atomic(&report_path, &json)?;
    Ok(SampleOutcome {
        report,
        skipped: false,
    })
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

fn sample_source(
    source: &Source,
    shards: &[InputShard],
    requested_share: f64,
    target: u64,
    out: &Path,
    options: &SampleOptions,
    progress: &mut Progress<'_, '_>,
) -> Result<SourceReport, SampleError> {
    let too_big = |what: &str| SampleError::Source {
        name: source.name.clone(),
        path: source.path.clone(),
        reason: format!("{what} does not fit 32 bits"),
    };
    // Pass 1: every document's length.
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
    let n = u32::try_from(lengths.len()).map_err(|_| too_big("the document count"))?;
    let available_tokens: u64 = lengths.iter().map(|&l| l as u64).sum();

    // The draw.
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
        if achieved + len <= target {
            take[i as usize] = true;
            achieved += len;
            documents += 1;
            continue;
        }
        if achieved + len - target < target - achieved {
            take[i as usize] = true;
            achieved += len;
            documents += 1;
        }
        break;
    }
    drop(order);
    drop(lengths);

    // Pass 2: copy the documents taken, in input order.
    let dir = out.join(&source.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|err| SampleError::Io {
            path: dir.clone(),
            err,
        })?;
    }
    let mut writer = create_writer(&dir, &shards[0], options.size_limit)?;
    let mut global = 0usize;
    for shard in shards {
        let first = global;
        if take[first..first + shard.samples() as usize].contains(&true) {
            for_each_doc(shard, &mut buf, |i, doc| {
                if take[first + i] {
                    copy_doc(&mut writer, shard, i, doc)?;
                }
                Ok(())
            })?;
        }
        global += shard.samples() as usize;
        progress.add(shard.samples());
    }
    writer.finish()?;
    Ok(SourceReport {
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
    })
}

/// SplitMix64 (Steele, Lea, Flood 2014): a fixed, documented generator, so a
/// seed means the same draw in every version of this crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-and-reject), `n > 0`.
    fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
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
