//! Checks a dataset folder against everything its index.json vouches for.

use std::path::{Path, PathBuf};

use crate::error::{MdsError, Result};
use crate::hash::check_hashes;
use crate::index::{FileInfo, Index, ShardEntry, safe_relative};
use crate::reader::decompress;
use crate::shard::decode_shard;
use crate::value::Value;

/// What a successful verification covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub shards: usize,
    pub samples: u64,
    /// Bytes of uncompressed shard data.
    pub raw_bytes: u64,
    /// Bytes of shard files on disk.
    pub disk_bytes: u64,
}

/// Re-hashes every shard file, checks every header, offset table and config, and
/// decodes every column of every sample. Stops at the first problem, naming the
/// shard (and sample).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_with(dir, &|_| Ok(()))
}

/// What a caller checks in each decoded sample on top of the format: its message
/// becomes the error of that sample. The format knows no column's meaning; the
/// packed-sample rule (`prolong_packed::check_sample`) is one such check.
pub type SampleCheck<'c> = &'c dyn Fn(&[(&str, Value<'_>)]) -> std::result::Result<(), String>;

/// [`verify`], and `check` on every sample.
pub fn verify_with(dir: &Path, check: SampleCheck<'_>) -> Result<VerifyReport> {
    let index = Index::load(dir)?;
    index.check_same_columns(&dir.join(crate::index::INDEX_FILE))?;
    let mut report = VerifyReport::default();
    for entry in &index.shards {
        verify_shard(dir, entry, check, &mut report)?;
    }
    Ok(report)
}

fn verify_shard(
    dir: &Path,
    entry: &ShardEntry,
    check: SampleCheck<'_>,
    report: &mut VerifyReport,
) -> Result<()> {
    let raw_path = shard_path(dir, &entry.raw_data);
    let raw = match &entry.zip_data {
        Some(zip) => {
            let zip_path = shard_path(dir, zip);
            let zipped = read_checked(&zip_path, zip)?;
            report.disk_bytes += zipped.len() as u64;
            let raw =
                decompress(&zipped, entry.raw_data.bytes).map_err(|reason| MdsError::BadShard {
                    path: zip_path.clone(),
                    reason,
                })?;
            // The reader prefers a cached raw copy: it must be the same bytes.
            if let Ok(cached) = std::fs::read(&raw_path)
                && cached != raw
            {
                return Err(MdsError::BadShard {
                    path: raw_path,
                    reason: format!("cached copy differs from {}; delete it", zip_path.display()),
                });
            }
            raw
        }
        None => {
            let raw = read_checked(&raw_path, &entry.raw_data)?;
            report.disk_bytes += raw.len() as u64;
            raw
        }
    };
    check_hashes(&raw_path, &raw, &entry.raw_data)?;
    let bad_shard = |reason: String| MdsError::BadShard {
        path: raw_path.clone(),
        reason,
    };
    let columns = entry.columns().map_err(bad_shard)?;
    let header =
        decode_shard(&raw, &columns, |_, values| check(values)).map_err(|(sample, reason)| {
            match sample {
                Some(sample) => MdsError::BadSample {
                    path: raw_path.clone(),
                    sample,
                    reason,
                },
                None => bad_shard(reason),
            }
        })?;
    if header.samples as u64 != entry.samples {
        return Err(bad_shard(format!(
            "holds {} samples, index.json says {}",
            header.samples, entry.samples
        )));
    }
    if header.config(&raw) != entry.config_json().as_bytes() {
        return Err(bad_shard(
            "config in the header differs from index.json".into(),
        ));
    }
    report.shards += 1;
    report.samples += entry.samples;
    report.raw_bytes += raw.len() as u64;
    Ok(())
}

fn shard_path(dir: &Path, info: &FileInfo) -> PathBuf {
    dir.join(safe_relative(&info.basename).unwrap_or_default())
}

fn read_checked(path: &Path, info: &FileInfo) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| MdsError::io(path, e))?;
    if data.len() as u64 != info.bytes {
        return Err(MdsError::BadShard {
            path: path.to_path_buf(),
            reason: format!("{} bytes, index.json says {}", data.len(), info.bytes),
        });
    }
    check_hashes(path, &data, info)?;
    Ok(data)
}
