//! A mixture of MDS streams with proportions: from a manifest or from
//! `path@proportion` arguments.

use std::path::{Path, PathBuf};

use prolong_packed::{
    Manifest, ManifestError, ProportionError, normalize_proportions, split_weight,
};

use super::error::DataError;
use super::rng::{SplitMix64, derive_seed};

/// Purpose tag of the allocation's seed (the loader's tags are 2, 3, 4).
pub(super) const TAG_ALLOCATION: u64 = 1;

/// One stream of a mixture: an MDS dataset folder (plain or a merged root with
/// `procNN-64/` sub-folders) and its (unnormalised) proportion of sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub path: PathBuf,
    pub proportion: f64,
}

/// The streams of a training stage and their proportions.
///
/// # Manifest format
///
/// The manifest (written by `prolong-data mix`) is a TOML file holding a list of
/// `[[stream]]` tables, each with a `path` (a string; a relative path is taken
/// relative to the folder holding the manifest) and a `proportion` (a number,
/// float or integer, finite and ≥ 0). Proportions need not sum to 1: they are
/// normalised. Other keys, at the top level or in a stream table, are ignored
/// (room for metadata such as token counts).
///
/// ```toml
/// [[stream]]
/// path = "thestackv1_concat_by_repo-65536"
/// proportion = 0.3
///
/// [[stream]]
/// path = "book-65536"
/// proportion = 0.3
///
/// [[stream]]
/// path = "/data/prolong-data-64K/fineweb-edu"
/// proportion = 0.1
/// ```
///
/// # Arguments
///
/// [`Mixture::from_args`] takes ProLong's script syntax, one `path@proportion`
/// per argument (`book-65536@0.3`); the split is at the last `@` (so a path that
/// itself holds an `@` needs an explicit proportion), and paths are used as
/// given (relative to the working directory). Either every argument has a
/// proportion or none has; without proportions every stream gets 1 (an even
/// split).
///
/// Both constructors check the proportions (finite, ≥ 0, positive sum) and that
/// every path is an MDS dataset folder (holds an `index.json`), failing with one
/// error that names the offending path.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    pub streams: Vec<Stream>,
}

impl Mixture {
    /// Reads a manifest (see the type's documentation for the format).
    pub fn from_manifest(path: &Path) -> Result<Mixture, DataError> {
        let manifest = Manifest::read(path).map_err(|e| match e {
            ManifestError::Io { path, source } => DataError::Io { path, err: source },
            ManifestError::Parse { path, reason } | ManifestError::Path { path, reason } => {
                DataError::Manifest { path, reason }
            }
        })?;
        if manifest.streams.is_empty() {
            return Err(DataError::NoStreams {
                origin: path.display().to_string(),
            });
        }
        let streams = manifest
            .stream_paths(path)
            .into_iter()
            .zip(&manifest.streams)
            .map(|(path, s)| Stream {
                path,
                proportion: s.proportion,
            })
            .collect();
        let mixture = Mixture { streams };
        mixture.validate()?;
        Ok(mixture)
    }

    /// Parses `path@proportion` arguments (see the type's documentation).
    pub fn from_args(args: &[String]) -> Result<Mixture, DataError> {
        if args.is_empty() {
            return Err(DataError::NoStreams {
                origin: "arguments".into(),
            });
        }
        let mut streams = Vec::with_capacity(args.len());
        let mut with_proportion = 0;
        for arg in args {
            let bad = |reason: &str| DataError::Argument {
                arg: arg.clone(),
                reason: reason.into(),
            };
            let (path, proportion) = split_weight(arg).map_err(bad)?;
            if proportion.is_some() {
                with_proportion += 1;
            }
            let proportion = proportion.unwrap_or(1.0);
            if path.is_empty() {
                return Err(bad("empty path"));
            }
            streams.push(Stream {
                path: PathBuf::from(path),
                proportion,
            });
        }
        if with_proportion != 0 && with_proportion != args.len() {
            return Err(DataError::Argument {
                arg: args.join(" "),
                reason: "either every stream has an @proportion or none has".into(),
            });
        }
        let mixture = Mixture { streams };
        mixture.validate()?;
        Ok(mixture)
    }

    /// Checks the proportions (each finite and ≥ 0, a positive sum) and that
    /// every path holds an `index.json`.
    pub fn validate(&self) -> Result<(), DataError> {
        self.normalized_proportions()?;
        for s in &self.streams {
            let index = s.path.join(prolong_mds::INDEX_FILE);
            if !index.is_file() {
                let reason = if s.path.is_dir() {
                    "the folder has no index.json".to_string()
                } else if s.path.exists() {
                    "not a folder".to_string()
                } else {
                    "no such folder".to_string()
                };
                return Err(DataError::NotMds {
                    path: s.path.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The proportions divided by their sum, after checking them.
    pub fn normalized_proportions(&self) -> Result<Vec<f64>, DataError> {
        if self.streams.is_empty() {
            return Err(DataError::NoStreams {
                origin: "mixture".into(),
            });
        }
        let given: Vec<f64> = self.streams.iter().map(|s| s.proportion).collect();
        normalize_proportions(&given).map_err(|err| match err {
            ProportionError::Invalid { index, .. } => DataError::Proportion {
                path: self.streams[index].path.clone(),
                err,
            },
            ProportionError::Sum { .. } => DataError::ProportionSum {
                err,
                streams: self
                    .streams
                    .iter()
                    .map(|s| format!("{}@{}", s.path.display(), s.proportion))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        })
    }
}

/// Splits `total` sequences over streams with `proportions` (normalised, e.g.
/// by [`Mixture::normalized_proportions`]): each stream gets
/// `floor(total × p)`, and the remainder `total − Σ floor` goes one each to
/// distinct streams chosen by an RNG seeded with `seed` (mosaicml-streaming's
/// rule). Streams of proportion 0 get nothing.
pub fn allocate(proportions: &[f64], total: u64, seed: u64) -> Vec<u64> {
    let mut allocation: Vec<u64> = proportions
        .iter()
        .map(|&p| (total as f64 * p).floor().max(0.0) as u64)
        .collect();
    let eligible: Vec<usize> = (0..proportions.len())
        .filter(|&j| proportions[j] > 0.0)
        .collect();
    if eligible.is_empty() {
        return allocation;
    }
    // Rounding can in principle push Σ floor over total: take back from the
    // largest shares (deterministically) before handing out the remainder.
    while allocation.iter().sum::<u64>() > total {
        let j = (0..allocation.len())
            .max_by_key(|&j| (allocation[j], std::cmp::Reverse(j)))
            .expect("non-empty");
        allocation[j] -= 1;
    }
    let mut remainder = total - allocation.iter().sum::<u64>();
    let mut rng = SplitMix64::new(derive_seed(seed, &[TAG_ALLOCATION]));
    let mut chosen = eligible;
    rng.shuffle(&mut chosen);
    // The remainder is below the number of eligible streams; cycle just in case.
    for &j in chosen.iter().cycle() {
        if remainder == 0 {
            break;
        }
        allocation[j] += 1;
        remainder -= 1;
    }
    allocation
}
