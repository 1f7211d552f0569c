//! The mix stage: packed MDS folders and their proportions of sequences →
//! the mixture manifest `prolong-train` reads (see
//! `prolong_train::data::Mixture::from_manifest`).
//!
//! ```toml
//! # Mixture manifest written by prolong-data mix (preset prolong-64k).
//! # prolong-train reads [[stream]] path and proportion; other keys are metadata.
//! sequence_length = 65536
//! total_samples = 1200
//! preset = "prolong-64k"
//! missing = []
//!
//! [[stream]]
//! name = "thestackv1_concat_by_repo-65536"
//! path = "../packed/thestackv1_concat_by_repo-65536"
//! proportion = 0.3
//! samples = 600
//! ```
//!
//! Rules: every stream is an MDS dataset with at least one sample whose
//! first sample's `input_ids` has the same length as every other stream's;
//! proportions are finite, ≥ 0 and sum to > 0, and are written normalised
//! (summing to 1). Paths are written relative to the manifest's folder.
//! The file is written atomically.

use std::path::{Path, PathBuf};

use prolong_mds::MdsDataset;
use prolong_packed::columns::INPUT_IDS;
pub use prolong_packed::{Manifest, ManifestStream};
use prolong_packed::{ProportionError, normalize_proportions};
use serde::Serialize;

use crate::sample::split_weighted;

/// The released ProLong training mixtures (docs/recipe.md), per-folder
/// proportions of sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Prolong64k,
    Prolong512k,
}

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::Prolong64k, Preset::Prolong512k];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Prolong64k => "prolong-64k",
            Preset::Prolong512k => "prolong-512k",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// (folder, proportion), in docs/recipe.md's order: the long data, then
    /// the short data, the same 40% in both mixtures.
    pub fn folders(self) -> Vec<(&'static str, f64)> {
        let long: &[(&str, f64)] = match self {
            Preset::Prolong64k => &[
                ("thestackv1_concat_by_repo-65536", 0.30),
                ("book-65536", 0.30),
            ],
            Preset::Prolong512k => &[
                ("thestackv1_concat_by_repo-65536", 0.15),
                ("thestackv1_concat_by_repo-524288", 0.15),
                ("book-65536", 0.25),
                ("book-524288", 0.05),
            ],
        };
        long.iter().chain(&SHORT_DATA).copied().collect()
    }
}

/// The short data of both released mixtures.
const SHORT_DATA: [(&str, f64); 8] = [
    ("fineweb-edu", 0.10),
    ("fineweb-2023-50", 0.10),
    ("stackexchange", 0.04),
    ("dolmawiki", 0.04),
    ("tuluv2", 0.03),
    ("arxiv", 0.03),
    ("openwebmath", 0.03),
    ("textbooks", 0.03),
];

/// One stream as asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSpec {
    pub name: String,
    pub path: PathBuf,
    pub proportion: f64,
}

impl StreamSpec {
    /// `[NAME=]DIR@PROPORTION`; the name defaults to DIR's last component.
    /// The split is at the last `@`.
    pub fn parse(arg: &str) -> Result<StreamSpec, MixError> {
        let (name, path, proportion) = split_weighted(arg, "PROPORTION", |rest| {
            Ok(rest.to_string())
        })
        .map_err(|reason| MixError::Argument {
            arg: arg.into(),
            reason,
        })?;
        Ok(StreamSpec {
            name,
            path: PathBuf::from(path),
            proportion,
        })
    }
}

/// The other name ProLong's own scripts give a preset folder: train_512K.sh reads the
/// 512K stage's long data from `thestackv1_concat_by_repo2-{65536,524288}` and
/// `book2-{65536,524288}`, the released prolong-data-512K folders without the `2`.
fn alternative_folder(preset: Preset, folder: &str) -> Option<String> {
    if preset != Preset::Prolong512k {
        return None;
    }
    ["thestackv1_concat_by_repo-", "book-"]
        .iter()
        .find_map(|p| {
            folder
                .strip_prefix(p)
                .map(|rest| format!("{}2-{rest}", &p[..p.len() - 1]))
        })
}

/// A preset's streams under `root` (`root/<folder>`). A folder is missing
/// when it holds no index.json. For the 512K preset the long-data folders are
/// found under either layout (`book-524288` or train_512K.sh's `book2-524288`);
/// each stream is named after the folder found, so the manifest and the summary
/// say which layout it was. Missing folders are an error (listing them
/// all) unless `allow_missing`, which drops them and returns their names; the
/// proportions of the rest are renormalised when the manifest is built.
pub fn preset_streams(
    preset: Preset,
    root: &Path,
    allow_missing: bool,
) -> Result<(Vec<StreamSpec>, Vec<String>), MixError> {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for (folder, proportion) in preset.folders() {
        let found = std::iter::once(folder.to_string())
            .chain(alternative_folder(preset, folder))
            .find(|f| root.join(f).join(prolong_mds::INDEX_FILE).is_file());
        if let Some(name) = found {
            present.push(StreamSpec {
                path: root.join(&name),
                name,
                proportion,
            });
        } else {
            missing.push(folder.to_string());
        }
    }
    if !missing.is_empty() && (!allow_missing || present.is_empty()) {
        return Err(MixError::Missing {
            preset: preset.name(),
            root: root.to_path_buf(),
            missing,
            none_left: present.is_empty(),
        });
    }
    Ok((present, missing))
}

#[derive(Debug, thiserror::Error)]
pub enum MixError {
    #[error("{arg:?}: {reason}")]
    Argument { arg: String, reason: String },
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(
        "preset {preset}: {} under {root}: {}{}",
        if missing.len() == 1 { "this folder is missing" } else { "these folders are missing" },
        missing.join(", "),
        if *none_left { " (none is present)" } else { " (--allow-missing drops them and renormalises the rest)" }
    )]
    Missing {
        preset: &'static str,
        root: PathBuf,
        missing: Vec<String>,
        none_left: bool,
    },
    #[error("stream {name} ({path}): {reason}")]
    Stream {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "sequence lengths differ: {first_name} has {first}, {name} has {length} \
         (mix streams packed to one length)"
    )]
    Lengths {
        first_name: String,
        first: u64,
        name: String,
        length: u64,
    },
    #[error("{path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
    #[error(transparent)]
    Manifest(#[from] prolong_packed::ManifestError),
}

/// Checks the streams (see the module docs) and gathers what the manifest
/// records. `expected_length`, when given, must be every stream's length.
pub fn build_manifest(
    streams: &[StreamSpec],
    expected_length: Option<u64>,
) -> Result<Manifest, MixError> {
    if streams.is_empty() {
        return Err(MixError::Settings("no streams".into()));
    }
    let given: Vec<f64> = streams.iter().map(|s| s.proportion).collect();
    let proportions = normalize_proportions(&given).map_err(|e| match e {
        ProportionError::Invalid { index, .. } => MixError::Stream {
            name: streams[index].name.clone(),
            path: streams[index].path.clone(),
            reason: e.to_string(),
        },
        ProportionError::Sum { .. } => MixError::Settings(e.to_string()),
    })?;
    for (i, s) in streams.iter().enumerate() {
        if streams[..i].iter().any(|o| o.name == s.name) {
            return Err(MixError::Settings(format!(
                "two streams are named {:?}; name them with NAME=DIR@PROPORTION",
                s.name
            )));
        }
    }
    let mut out = Vec::with_capacity(streams.len());
    let mut length: Option<(String, u64)> =
        expected_length.map(|n| ("--sequence-length".into(), n));
    for (s, proportion) in streams.iter().zip(proportions) {
        let bad = |reason: String| MixError::Stream {
            name: s.name.clone(),
            path: s.path.clone(),
            reason,
        };
        if !s.path.join(prolong_mds::INDEX_FILE).is_file() {
            return Err(bad(if s.path.is_dir() {
                "not an MDS dataset (no index.json)".into()
            } else {
                "no such folder".into()
            }));
        }
        let dataset = MdsDataset::open(&s.path).map_err(|e| bad(e.to_string()))?;
        if dataset.is_empty() {
            return Err(bad("holds no samples".into()));
        }
        let first = dataset.get(0).map_err(|e| bad(e.to_string()))?;
        let n = first
            .array(INPUT_IDS)
            .map_err(|e| bad(format!("first sample: {e}")))?
            .len() as u64;
        match &length {
            None => length = Some((s.name.clone(), n)),
            Some((first_name, first)) if *first != n => {
                return Err(MixError::Lengths {
                    first_name: first_name.clone(),
                    first: *first,
                    name: s.name.clone(),
                    length: n,
                });
            }
            Some(_) => {}
        }
        out.push(ManifestStream {
            name: s.name.clone(),
            path: s.path.clone(),
            proportion,
            given_proportion: (proportion != s.proportion).then_some(s.proportion),
            samples: dataset.len() as u64,
        });
    }
    Ok(Manifest {
        sequence_length: length.map_or(0, |l| l.1),
        total_samples: out.iter().map(|s| s.samples).sum(),
        preset: None,
        missing: Vec::new(),
        streams: out,
    })
}

/// Renders the manifest for `path` and writes it atomically (creating the
/// folder). Returns the text written.
pub fn write_manifest(manifest: &Manifest, path: &Path) -> Result<String, MixError> {
    let io = |e: std::io::Error| MixError::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let abs = prolong_packed::manifest::absolute(path).map_err(io)?;
    let dir = abs.parent().ok_or_else(|| MixError::Output {
        path: path.to_path_buf(),
        reason: "not a file path".into(),
    })?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = manifest.render(dir)?;
    prolong_mds::write_atomic(&abs, text.as_bytes())?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_sum_to_one() {
        for p in Preset::ALL {
            let sum: f64 = p.folders().iter().map(|f| f.1).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{}: {sum}", p.name());
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn stream_args_parse() {
        let s = StreamSpec::parse("book-65536=/x/b@0.3").unwrap();
        assert_eq!((s.name.as_str(), s.proportion), ("book-65536", 0.3));
        let s = StreamSpec::parse("data/packed/book-65536@1").unwrap();
        assert_eq!(s.name, "book-65536");
        assert!(StreamSpec::parse("x").is_err());
    }
}
