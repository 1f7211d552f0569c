//! One `repos` task of a `--rank R --world-size N` run, and the layout of
//! the output folder:
//!
//! ```text
//! OUT/part-{R:05}-of-{N:05}.jsonl.zst    task R's documents, one JSON object a line
//! OUT/part-{R:05}-of-{N:05}.stats.json   task R's TaskStats (settings and counts)
//! OUT/part-{R:05}-of-{N:05}.done         completion marker, written last
//! ```
//!
//! The entries of the input folder are sorted by the bytes of their names;
//! task R takes entries R, R+N, R+2N, ... and writes one document per
//! repository, in that order. Every file is written under a temporary name
//! and renamed into place; the marker comes last, so a killed task leaves no
//! marker and is redone from scratch by the next run, which gives
//! byte-identical output (zstd level [`ZSTD_LEVEL`], one thread, with a
//! content checksum). A task whose marker exists is skipped, after checking
//! that it was made with the same settings, input folder and entries (their
//! names, and each git entry's HEAD commit, so new commits are noticed; a
//! plain folder's files are not re-read for this): a rerun that differs is
//! refused, naming what changed.
//!
//! `--dedup-files` is global and the same whatever `--world-size`: a content
//! is kept by the first entry of the whole input folder that holds it (see
//! the source module). Before writing, a task surveys its own entries (the
//! contents they hold) and then every earlier entry of the other tasks
//! (git trees and blob sizes, not blob contents; plain folders are read), so
//! each task holds the owners of its own contents only, not the whole
//! input's.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use git2::Oid;
use serde::{Deserialize, Serialize};

use super::error::ReposError;
use super::source::{Dedup, Problem, ReposOptions, head_commit, read_repository, survey};
use crate::task::TaskHeader;

/// The zstd level of the output (fixed: part of the byte-identical promise).
pub const ZSTD_LEVEL: i32 = 6;
/// Problems listed in the stats at most (all are counted).
pub const MAX_PROBLEMS: usize = 1000;

/// `part-{rank:05}-of-{world_size:05}`.
pub fn part_name(rank: usize, world_size: usize) -> String {
    format!("part-{rank:05}-of-{world_size:05}")
}

pub fn part_path(out: &Path, rank: usize, world_size: usize) -> PathBuf {
    out.join(format!("{}.jsonl.zst", part_name(rank, world_size)))
}

pub fn stats_path(out: &Path, rank: usize, world_size: usize) -> PathBuf {
    out.join(format!(
        "{}{}",
        part_name(rank, world_size),
        crate::task::STATS_SUFFIX
    ))
}

pub fn marker_path(out: &Path, rank: usize, world_size: usize) -> PathBuf {
    out.join(format!("{}.done", part_name(rank, world_size)))
}

/// What a task's stats file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    #[serde(flatten)]
    pub header: TaskHeader,
    pub options: ReposOptions,
    /// The input folder, as given.
    pub input: PathBuf,
    /// Entries of the input folder, all tasks'.
    pub entries: u64,
    /// xxh3-128 (hex) of the entries' names, in sorted order, each followed
    /// by a NUL byte: a rerun on other entries is refused.
    pub entries_hash: String,
    /// xxh3-128 (hex) of each entry's HEAD commit id (empty for plain
    /// folders), in the same order: a rerun after new commits is refused.
    /// Absent from the stats of older runs, which are then not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub heads_hash: String,
    /// Entries of the input folder this task took.
    pub repos_in: u64,
    /// Documents written.
    pub repos_out: u64,
    /// Entries that gave no document, by reason.
    pub repos_skipped: BTreeMap<String, u64>,
    pub files_kept: u64,
    /// Bytes of the kept files' content.
    pub bytes_kept: u64,
    /// Bytes of the documents' text (with headers and separators).
    pub text_bytes: u64,
    /// Files left out, by reason, over all entries.
    pub files_skipped: BTreeMap<String, u64>,
    /// Files and entries skipped because something went wrong, with the
    /// error (the first [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    pub problems_not_listed: u64,
}

#[derive(Debug, Clone)]
pub struct TaskReport {
    pub stats: TaskStats,
    /// The output file of the task.
    pub part: PathBuf,
    /// The task had been completed before and was not redone.
    pub skipped: bool,
}

/// Progress of a running task, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub repos_done: u64,
    pub repos_total: u64,
    pub files_kept: u64,
}

/// The entries of the input folder, sorted by the bytes of their names.
pub fn list_inputs(input: &Path) -> Result<Vec<PathBuf>, ReposError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(input).map_err(|e| ReposError::io(input, e))? {
        let entry = entry.map_err(|e| ReposError::io(input, e))?;
        entries.push(entry.path());
    }
    entries.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(entries)
}

fn check_rank(rank: usize, world_size: usize) -> Result<(), ReposError> {
    if world_size == 0 || rank >= world_size {
        return Err(ReposError::Settings(format!(
            "rank {rank} is not below world size {world_size}"
        )));
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), ReposError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ReposError::io(path, e)),
        _ => Ok(()),
    }
}

/// xxh3-128 (hex) of the entries' names, each followed by a NUL byte.
fn names_hash(entries: &[PathBuf]) -> String {
    hash_each(entries, |entry| {
        entry
            .file_name()
            .unwrap_or_default()
            .as_encoded_bytes()
            .to_vec()
    })
}

/// The HEAD commit of every entry (see [`head_commit`]; nothing for plain
/// folders), hashed as [`names_hash`] hashes the names.
fn heads_hash(entries: &[PathBuf]) -> String {
    hash_each(entries, |entry| {
        head_commit(entry).map_or_else(Vec::new, |id| id.as_bytes().to_vec())
    })
}

/// xxh3-128 (hex) of `part` of each entry, in order, each followed by a NUL byte.
fn hash_each(entries: &[PathBuf], part: impl Fn(&Path) -> Vec<u8>) -> String {
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend_from_slice(&part(entry));
        bytes.push(0);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

/// The settings that differ, as `key A then, B now`; none when equal.
fn settings_changed(then: &ReposOptions, now: &ReposOptions) -> Option<String> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(then).ok()?,
        serde_json::to_value(now).ok()?,
    ) else {
        return None;
    };
    let changes: Vec<String> = b
        .iter()
        .filter(|(key, value)| a.get(*key) != Some(*value))
        .map(|(key, value)| {
            let old = a.get(key).map_or("unset".to_string(), |v| v.to_string());
            format!("{key} {old} then, {value} now")
        })
        .collect();
    (!changes.is_empty()).then(|| changes.join(", "))
}

/// The owner (first entry in sorted order) of each content of the entries
/// `mine` (indices into `entries`, increasing) among all entries up to the
/// last of them: the contents of `mine` are surveyed first, then those of
/// every earlier entry of the other tasks can only lower an owner.
fn dedup_owners(
    entries: &[PathBuf],
    mine: &[usize],
    options: &ReposOptions,
) -> HashMap<Oid, usize> {
    let mut owners: HashMap<Oid, usize> = HashMap::new();
    for &index in mine {
        for key in survey(&entries[index], options) {
            owners.entry(key).or_insert(index);
        }
    }
    let last = mine.last().copied().unwrap_or(0);
    let others = (0..last).filter(|i| mine.binary_search(i).is_err());
    for index in others {
        for key in survey(&entries[index], options) {
            if let Some(owner) = owners.get_mut(&key) {
                *owner = (*owner).min(index);
            }
        }
    }
    owners
}

fn read_stats(path: &Path) -> Result<TaskStats, ReposError> {
    let bytes = std::fs::read(path).map_err(|e| ReposError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| ReposError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs task `rank` of `world_size` over the entries of `input` (see the
/// module docs). `progress` is called after each entry.
pub fn run_task(
    input: &Path,
    out: &Path,
    options: &ReposOptions,
    rank: usize,
    world_size: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<TaskReport, ReposError> {
    check_rank(rank, world_size)?;
    let part = part_path(out, rank, world_size);
    let stats_file = stats_path(out, rank, world_size);
    let marker = marker_path(out, rank, world_size);

    let entries = list_inputs(input)?;
    let entries_hash = names_hash(&entries);
    let heads_hash = heads_hash(&entries);
    if marker.is_file() {
        let changed = |what: String| ReposError::Changed {
            out: out.to_path_buf(),
            task: part_name(rank, world_size),
            what,
        };
        let stats = read_stats(&stats_file)
            .map_err(|e| changed(format!("its stats file is unreadable: {e}")))?;
        if let Some(what) = settings_changed(&stats.options, options) {
            return Err(changed(what));
        }
        if stats.input != input {
            return Err(changed(format!(
                "it read {}, this run {}",
                stats.input.display(),
                input.display()
            )));
        }
        if (stats.entries, &stats.entries_hash) != (entries.len() as u64, &entries_hash) {
            return Err(changed(format!(
                "the entries of the input folder differ ({} then, {} now)",
                stats.entries,
                entries.len()
            )));
        }
        if !stats.heads_hash.is_empty() && stats.heads_hash != heads_hash {
            return Err(changed(
                "a repository's HEAD names another commit (new commits since?)".to_string(),
            ));
        }
        return Ok(TaskReport {
            stats,
            part,
            skipped: true,
        });
    }

    let mine: Vec<usize> = (rank..entries.len()).step_by(world_size).collect();

    // Start from scratch: nothing of an earlier attempt survives.
    std::fs::create_dir_all(out).map_err(|e| ReposError::io(out, e))?;
    remove_if_exists(&stats_file)?;
    remove_if_exists(&part)?;
    let names: Vec<String> = [&part, &stats_file, &marker]
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    prolong_mds::remove_stale_temps(out, &names.iter().map(String::as_str).collect::<Vec<_>>())?;

    let owners = if options.dedup_files {
        dedup_owners(&entries, &mine, options)
    } else {
        HashMap::new()
    };

    let mut stats = TaskStats {
        header: TaskHeader {
            task: part_name(rank, world_size),
            rank,
            world_size,
        },
        options: options.clone(),
        input: input.to_path_buf(),
        entries: entries.len() as u64,
        entries_hash,
        heads_hash,
        repos_in: mine.len() as u64,
        repos_out: 0,
        repos_skipped: BTreeMap::new(),
        files_kept: 0,
        bytes_kept: 0,
        text_bytes: 0,
        files_skipped: BTreeMap::new(),
        problems: Vec::new(),
        problems_not_listed: 0,
    };
    let mut p = Progress {
        repos_total: mine.len() as u64,
        ..Progress::default()
    };
    progress(p);

    prolong_mds::write_atomic_with(&part, true, |writer| {
        let mut encoder = zstd::stream::write::Encoder::new(writer, ZSTD_LEVEL)?;
        encoder.include_checksum(true)?;
        for &index in &mine {
            let dedup = Dedup {
                owners: &owners,
                index,
            };
            let result = read_repository(&entries[index], options, Some(dedup));
            for (reason, n) in &result.skipped {
                *stats.files_skipped.entry(reason.clone()).or_default() += n;
            }
            for problem in result.problems {
                if stats.problems.len() < MAX_PROBLEMS {
                    stats.problems.push(problem);
                } else {
                    stats.problems_not_listed += 1;
                }
            }
            match result.outcome {
                Ok(doc) => {
                    serde_json::to_writer(&mut encoder, &doc)?;
                    encoder.write_all(b"\n")?;
                    stats.repos_out += 1;
                    stats.files_kept += doc.metadata.files;
                    stats.bytes_kept += doc.metadata.bytes;
                    stats.text_bytes += doc.text.len() as u64;
                }
                Err(reason) => {
                    *stats
                        .repos_skipped
                        .entry(reason.as_str().to_string())
                        .or_default() += 1;
                }
            }
            p.repos_done += 1;
            p.files_kept = stats.files_kept;
            progress(p);
        }
        encoder.finish()?;
        Ok(())
    })?;

    let json = serde_json::to_string_pretty(&stats).map_err(|source| ReposError::Json {
        path: stats_file.clone(),
        source,
    })? + "\n";
    prolong_mds::write_atomic(&stats_file, json.as_bytes())?;
    prolong_mds::write_atomic(&marker, b"done\n")?;
    Ok(TaskReport {
        stats,
        part,
        skipped: false,
    })
}
