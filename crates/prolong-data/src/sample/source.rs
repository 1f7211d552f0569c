//! The sources and their shares: `[NAME=]DIR@SHARE` arguments, the token
//! targets the shares give, and source names fit to be folder names.

use std::path::{Path, PathBuf};

use prolong_packed::{ProportionError, normalize_proportions, split_weight};
use serde::{Deserialize, Serialize};

use super::REPORT_FILE;
use crate::StageError;

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
    pub fn parse(arg: &str) -> Result<Source, StageError> {
        let unnamed = |_: &str| Err("cannot name the source after its path; use NAME=DIR@SHARE");
        let (name, path, share) =
            split_weighted(arg, "SHARE", unnamed).map_err(|reason| StageError::Argument {
                arg: arg.into(),
                reason,
            })?;
        Ok(Source {
            name,
            path: PathBuf::from(path),
            share,
        })
    }
}

/// `[NAME=]DIR@VALUE` (sample's sources, mix's streams) split at the last
/// `@`: the name (else DIR's last component, else what `unnamed` makes of
/// DIR), DIR and the number; or why not.
pub fn split_weighted<'a>(
    arg: &'a str,
    value: &str,
    unnamed: impl FnOnce(&str) -> Result<String, &'static str>,
) -> Result<(String, &'a str, f64), String> {
    let (rest, number) = match split_weight(arg)? {
        (rest, Some(number)) => (rest, number),
        (_, None) => return Err(format!("expected [NAME=]DIR@{value}")),
    };
    let (name, path) = match rest.split_once('=') {
        Some((name, path)) if !name.contains(['/', '\\']) => (name.to_string(), path),
        _ => match Path::new(rest).file_name() {
            Some(name) => (name.to_string_lossy().into_owned(), rest),
            None => (unnamed(rest)?, rest),
        },
    };
    if path.is_empty() {
        return Err("empty path".into());
    }
    Ok((name, path, number))
}

/// The targets: round(total × share / Σ shares), after checking the shares.
pub fn targets(sources: &[Source], total_tokens: u64) -> Result<Vec<(f64, u64)>, StageError> {
    if sources.is_empty() {
        return Err(StageError::Settings("no sources".into()));
    }
    let shares: Vec<f64> = sources.iter().map(|s| s.share).collect();
    let shares = normalize_proportions(&shares).map_err(|e| {
        StageError::Settings(match e {
            ProportionError::Invalid { index, value } => format!(
                "source {}: share {value} must be finite and ≥ 0",
                sources[index].name
            ),
            ProportionError::Sum { sum } => {
                format!("the shares sum to {sum}; at least one must be positive")
            }
        })
    })?;
    Ok(shares
        .into_iter()
        .map(|p| (p, (total_tokens as f64 * p).round() as u64))
        .collect())
}

/// Source names are folder names under OUT, distinct, and not the report's.
pub(super) fn check_names(sources: &[Source]) -> Result<(), StageError> {
    for (i, s) in sources.iter().enumerate() {
        let ok = !s.name.is_empty()
            && s.name != "."
            && s.name != ".."
            && !s.name.contains(['/', '\\'])
            && s.name != REPORT_FILE;
        if !ok {
            return Err(StageError::Settings(format!(
                "source name {:?} is not a folder name",
                s.name
            )));
        }
        if sources[..i].iter().any(|o| o.name == s.name) {
            return Err(StageError::Settings(format!(
                "two sources are named {:?}; name them with NAME=DIR@SHARE",
                s.name
            )));
        }
    }
    Ok(())
}
