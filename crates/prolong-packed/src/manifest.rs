//! The mixture manifest: the packed datasets of a training stage and their
//! proportions of sequences. `prolong-data mix` builds a [`Manifest`] and writes it
//! with [`Manifest::render`]; `prolong-train` reads it with [`Manifest::read`].
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
//! A reader needs only each stream's `path` (relative to the manifest's folder) and
//! `proportion`; every other key is metadata and may be absent, so a hand-written
//! manifest of `[[stream]]` paths and proportions is a manifest too.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A manifest that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

/// One stream: a packed MDS dataset and its share of the stage's sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestStream {
    #[serde(default)]
    pub name: String,
    /// In a file: relative to the manifest's folder (or absolute). Built by `mix`:
    /// as given on its command line.
    pub path: PathBuf,
    /// Written normalised: the manifest's proportions sum to 1.
    pub proportion: f64,
    /// The proportion as given, when normalising changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_proportion: Option<f64>,
    /// Samples in the dataset.
    #[serde(default)]
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Tokens of every stream's sequences.
    #[serde(default)]
    pub sequence_length: u64,
    #[serde(default)]
    pub total_samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Preset folders left out by `mix --allow-missing`.
    #[serde(default)]
    pub missing: Vec<String>,
    #[serde(default, rename = "stream")]
    pub streams: Vec<ManifestStream>,
}

impl Manifest {
    /// Reads a manifest file; stream paths stay as written (see [`Self::stream_paths`]).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string().trim_end().to_string(),
        })
    }

    /// Each stream's path resolved against the folder of the manifest file `path`.
    pub fn stream_paths(&self, path: &Path) -> Vec<PathBuf> {
        let base = path.parent().unwrap_or(Path::new(""));
        self.streams.iter().map(|s| base.join(&s.path)).collect()
    }

    /// The manifest's TOML, with paths relative to `manifest_dir` (an absolute
    /// folder; stream paths are made absolute against the working directory). Written
    /// by hand rather than by a TOML serialiser so the header comment and the key
    /// order stay as documented.
    pub fn render(&self, manifest_dir: &Path) -> Result<String, ManifestError> {
        let mut s = String::new();
        s.push_str("# Mixture manifest written by prolong-data mix");
        if let Some(p) = &self.preset {
            s.push_str(&format!(" (preset {p})"));
        }
        s.push_str(
            ".\n# prolong-train reads [[stream]] path and proportion; other keys are metadata.\n",
        );
        s.push_str(&format!("sequence_length = {}\n", self.sequence_length));
        s.push_str(&format!("total_samples = {}\n", self.total_samples));
        if let Some(p) = &self.preset {
            s.push_str(&format!("preset = {}\n", toml_string(p)));
            let missing: Vec<String> = self.missing.iter().map(|m| toml_string(m)).collect();
            s.push_str(&format!("missing = [{}]\n", missing.join(", ")));
        }
        for stream in &self.streams {
            let bad = |reason: String| ManifestError::Path {
                path: stream.path.clone(),
                reason,
            };
            let abs = absolute(&stream.path).map_err(|e| bad(e.to_string()))?;
            let rel = relative_path(manifest_dir, &abs);
            let rel = rel
                .to_str()
                .ok_or_else(|| bad("the path is not UTF-8".into()))?;
            s.push_str("\n[[stream]]\n");
            s.push_str(&format!("name = {}\n", toml_string(&stream.name)));
            s.push_str(&format!("path = {}\n", toml_string(rel)));
            s.push_str(&format!("proportion = {}\n", toml_float(stream.proportion)));
            if let Some(given) = stream.given_proportion {
                s.push_str(&format!("given_proportion = {}\n", toml_float(given)));
            }
            s.push_str(&format!("samples = {}\n", stream.samples));
        }
        Ok(s)
    }
}

/// Why a list of proportions cannot be normalised; each caller words the message
/// with its own names (a stream, a source's share).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ProportionError {
    /// `proportions[index]` is negative, infinite or NaN.
    #[error("proportion {value} must be finite and ≥ 0")]
    Invalid { index: usize, value: f64 },
    /// The proportions sum to 0 (or there are none), or past what an f64 holds.
    #[error("the proportions sum to {sum}; at least one must be positive")]
    Sum { sum: f64 },
}

/// The one rule for a mixture's proportions, which `mix` applies before writing a
/// manifest, the trainer after reading one (it may be hand-written), and `sample`
/// to its shares: each finite and ≥ 0, their sum positive and finite. Returns each
/// divided by their sum (in order, so the quotients are the same wherever computed).
pub fn normalize_proportions(proportions: &[f64]) -> Result<Vec<f64>, ProportionError> {
    if let Some((index, &value)) =
        (proportions.iter().enumerate()).find(|(_, p)| !p.is_finite() || **p < 0.0)
    {
        return Err(ProportionError::Invalid { index, value });
    }
    let sum: f64 = proportions.iter().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return Err(ProportionError::Sum { sum });
    }
    Ok(proportions.iter().map(|p| p / sum).collect())
}

/// A stream or source as a command line gives it, `PATH@NUMBER`: the text before
/// the last `@` and the number after it, or the whole text and `None` where there
/// is no `@` (so a path holding an `@` needs an explicit number). The one reading
/// of that syntax: the trainer's `path@proportion` streams, and `prolong-data`'s
/// `[NAME=]DIR@SHARE` sources and mix streams, which then take a name off the front.
pub fn split_weight(arg: &str) -> Result<(&str, Option<f64>), &'static str> {
    let Some((rest, number)) = arg.rsplit_once('@') else {
        return Ok((arg, None));
    };
    match number.trim().parse() {
        Ok(number) => Ok((rest, Some(number))),
        Err(_) => Err("the text after the last '@' is not a number"),
    }
}

/// A TOML basic string: JSON's escapes are a subset of TOML's.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A TOML float (always with a fraction or exponent).
fn toml_float(x: f64) -> String {
    format!("{x:?}")
}

/// `path` made absolute and lexically normalised (`.` and `..` resolved
/// without touching the file system, so symlinked folders keep their names).
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `to` relative to the folder `from` (both absolute and normalised).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_c: Vec<Component> = to.components().collect();
    if from.first() != to_c.first() {
        return to.to_path_buf(); // another root (Windows drives)
    }
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to_c[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let r = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b));
        assert_eq!(
            r("/d/mix", "/d/packed/book"),
            PathBuf::from("../packed/book")
        );
        assert_eq!(r("/d/mix", "/d/mix/book"), PathBuf::from("book"));
        assert_eq!(r("/d/mix", "/d/mix"), PathBuf::from("."));
        assert_eq!(r("/a/b/c", "/x"), PathBuf::from("../../../x"));
    }

    #[test]
    fn proportions_are_checked_then_divided_by_their_sum() {
        assert_eq!(normalize_proportions(&[1.0, 3.0]), Ok(vec![0.25, 0.75]));
        assert_eq!(normalize_proportions(&[0.0, 2.0]), Ok(vec![0.0, 1.0]));
        for (bad, index) in [(-1.0, 1), (f64::INFINITY, 1)] {
            assert_eq!(
                normalize_proportions(&[1.0, bad, -2.0]),
                Err(ProportionError::Invalid { index, value: bad })
            );
        }
        assert!(matches!(
            normalize_proportions(&[1.0, f64::NAN]),
            Err(ProportionError::Invalid { index: 1, .. })
        ));
        for zero in [&[][..], &[0.0, 0.0]] {
            let sum = 0.0;
            assert_eq!(
                normalize_proportions(zero),
                Err(ProportionError::Sum { sum })
            );
        }
        let huge = normalize_proportions(&[f64::MAX, f64::MAX]);
        assert_eq!(huge, Err(ProportionError::Sum { sum: f64::INFINITY }));
    }

    #[test]
    fn weights_are_split_at_the_last_at_sign() {
        assert_eq!(
            split_weight("book-65536@0.3"),
            Ok(("book-65536", Some(0.3)))
        );
        assert_eq!(split_weight("a@b/c@ 2 "), Ok(("a@b/c", Some(2.0))));
        assert_eq!(split_weight("code"), Ok(("code", None)));
        assert_eq!(split_weight("@1"), Ok(("", Some(1.0))));
        assert!(split_weight("a@b/c").is_err());
        assert!(split_weight("a@").is_err());
    }

    #[test]
    fn toml_values() {
        assert_eq!(toml_float(1.0), "1.0");
        assert_eq!(toml_float(0.3), "0.3");
        assert_eq!(toml_string("a\"b\\c"), r#""a\"b\\c""#);
    }

    /// What `render` writes, `read` reads back: the writer's and the reader's type
    /// are one, so they cannot drift.
    #[test]
    fn render_then_read_round_trips() {
        let dir =
            std::env::temp_dir().join(format!("prolong-packed-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = Manifest {
            sequence_length: 65536,
            total_samples: 30,
            preset: Some("prolong-64k".into()),
            missing: vec!["textbooks".into()],
            streams: vec![
                ManifestStream {
                    name: "book".into(),
                    path: dir.join("packed/book"),
                    proportion: 0.75,
                    given_proportion: Some(3.0),
                    samples: 10,
                },
                ManifestStream {
                    name: "code".into(),
                    path: dir.join("packed/code"),
                    proportion: 0.25,
                    given_proportion: None,
                    samples: 20,
                },
            ],
        };
        let file = dir.join("mix/stage.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, manifest.render(file.parent().unwrap()).unwrap()).unwrap();
        let read = Manifest::read(&file).unwrap();
        assert_eq!(read.streams[0].path, PathBuf::from("../packed/book"));
        assert_eq!(read.stream_paths(&file)[1], dir.join("mix/../packed/code"));
        let mut expected = manifest.clone();
        for s in &mut expected.streams {
            s.path = Path::new("../packed").join(s.path.file_name().unwrap());
        }
        assert_eq!(read, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
