//! One pack task of a `--rank R --world-size W` run, and the layout of the
//! output folder:
//!
//! ```text
//! OUT/{subset}/proc{R}-{W}/index.json, shard.NNNNN.mds   task R's sequences
//! OUT/proc{R}-{W}.stats.json                             task R's PackStats and settings
//! OUT/proc{R}-{W}.done                                   completion marker, written last
//! OUT/{subset}/index.json, OUT/index.json                merged once every task is done
//! ```
//!
//! `{subset}` is "." (the root itself) without splitting, `{t}-{N}` per split
//! target, under `--domain` when given; R is zero-padded to the width of W
//! (`proc0-1`, `proc07-64`): ProLong's own names, as every stage's
//! [`TaskSpec`] gives them. Task R reads input shards
//! R, R+W, R+2W, ... of the concatenated inputs, in order, and packs them as
//! one stream. A task whose marker exists is skipped (after checking that it
//! was made with the same settings); one without is redone from scratch,
//! which gives byte-identical output.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use prolong_mds::{Array, Dtype, INDEX_FILE, MdsWriter, Value, WriterOptions};
use prolong_packed::columns;
use serde::{Deserialize, Serialize};

use super::error::PackError;
use super::input::{InputShard, for_each_doc, plan_inputs};
use super::options::PackOptions;
use super::packer::{Packer, Sequence};
use super::stats::PackStats;
use crate::filter::input::InputError;
use crate::task::{Task, TaskHeader, TaskSpec};

/// What a task's marker records (see [`Task::check_output`]).
#[derive(Serialize)]
struct PackSettings<'a> {
    inputs: &'a [PathBuf],
    with_mask: bool,
    #[serde(flatten)]
    options: &'a PackOptions,
}

/// What a task's stats file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    #[serde(flatten)]
    pub header: TaskHeader,
    pub options: PackOptions,
    pub with_mask: bool,
    /// The input datasets, as given.
    pub inputs: Vec<PathBuf>,
    /// How many input shards this task read.
    pub input_shards: usize,
    pub stats: PackStats,
}

#[derive(Debug, Clone)]
pub struct TaskReport {
    pub record: TaskRecord,
    /// The task had been completed before and was not redone.
    pub skipped: bool,
    /// Every task of the run is complete and the root index.json was merged.
    pub merged: bool,
}

/// Progress of a running task, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub samples_done: u64,
    pub samples_total: u64,
    pub tokens_in: u64,
    pub sequences: u64,
}

fn subset_dir(out: &Path, subset: &str) -> PathBuf {
    if subset == "." {
        out.to_path_buf()
    } else {
        out.join(subset)
    }
}

/// Runs one task (see the module docs), then merges the indices if it finds
/// every task complete. `progress` is called now and then.
pub fn run_task(
    inputs: &[PathBuf],
    task: Task<'_>,
    options: &PackOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<TaskReport, PackError> {
    options.check()?;
    // A spec built by hand (its fields are public) may be out of range.
    TaskSpec::new(task.spec.rank, task.spec.world_size)
        .map_err(|e| PackError::settings(e.to_string()))?;
    let out = task.out;
    let world_size = task.spec.world_size;
    let (shards, with_mask) = plan_inputs(inputs)?;
    let mine: Vec<&InputShard> = task.spec.take(&shards).collect();
    let name = task.spec.name();
    let stats_file = task.stats_path();
    let settings = PackSettings {
        inputs,
        with_mask,
        options,
    };
    task.check_output(inputs, &settings)?;

    if task.is_done() {
        let record = read_record(&stats_file)?;
        let merged = merge_if_complete(out, options, world_size)?;
        return Ok(TaskReport {
            record,
            skipped: true,
            merged,
        });
    }

    // Start from scratch: nothing of an earlier attempt survives, and no
    // merged index claims the dataset is finished while this task runs.
    std::fs::create_dir_all(out).map_err(|e| PackError::io(out, e))?;
    remove_file_if_exists(&stats_file)?;
    for dir in merged_dirs(out, options) {
        remove_file_if_exists(&dir.join(INDEX_FILE))?;
    }
    for subset in options.subsets() {
        let dir = subset_dir(out, &subset).join(&name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(PackError::io(&dir, e));
            }
            _ => {}
        }
    }

    let subsets = options.subsets();
    let mut writers: Vec<Option<MdsWriter>> = subsets.iter().map(|_| None).collect();
    let writer_options = WriterOptions {
        compression: options.compression.clone(),
        hashes: Vec::new(),
        size_limit: options.size_limit,
    };
    let mut columns = columns::PACKED.to_vec();
    if with_mask {
        columns.push(columns::MASK_COLUMN);
    }
    let mut packer = Packer::new(options, with_mask)?;
    let mut emit = |s: Sequence<'_>| -> Result<(), PackError> {
        let slot = &mut writers[s.subset];
        if slot.is_none() {
            let dir = subset_dir(out, s.domain).join(&name);
            *slot = Some(MdsWriter::create(&dir, &columns, writer_options.clone())?);
        }
        match slot {
            Some(writer) => write_sequence(writer, &s),
            None => Ok(()),
        }
    };

    let mut p = Progress {
        samples_total: mine.iter().map(|s| s.samples()).sum(),
        ..Progress::default()
    };
    progress(p);
    for shard in &mine {
        for_each_doc(shard, |i, doc| {
            packer
                .push(doc.tokens, doc.mask.as_deref(), &mut emit)
                .map_err(|e| match e {
                    PackError::Settings(reason) => InputError::BadSample {
                        path: shard.raw_path.clone(),
                        sample: i,
                        reason,
                    }
                    .into(),
                    other => other,
                })?;
            p.samples_done += 1;
            if p.samples_done & 1023 == 0 {
                p.tokens_in = packer.stats().tokens_in;
                p.sequences = packer.stats().sequences;
                progress(p);
            }
            Ok(())
        })?;
        p.tokens_in = packer.stats().tokens_in;
        p.sequences = packer.stats().sequences;
        progress(p);
    }
    let stats = packer.finish();
    for writer in writers.into_iter().flatten() {
        writer.finish()?;
    }

    let record = TaskRecord {
        header: task.spec.header(),
        options: options.clone(),
        with_mask,
        inputs: inputs.to_vec(),
        input_shards: mine.len(),
        stats,
    };
    task.complete(&record, &settings)?;
    let merged = merge_if_complete(out, options, world_size)?;
    Ok(TaskReport {
        record,
        skipped: false,
        merged,
    })
}

/// Runs every task of a `world_size` run in this process, `threads` at a
/// time, then returns their reports (the last task to finish merges).
pub fn run_all(
    inputs: &[PathBuf],
    out: &Path,
    options: &PackOptions,
    world_size: usize,
    threads: usize,
    progress: &(dyn Fn(usize, Progress) + Sync),
) -> Result<Vec<TaskReport>, PackError> {
    TaskSpec::new(0, world_size).map_err(|e| PackError::settings(e.to_string()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| PackError::settings(format!("thread pool: {e}")))?;
    let reports: Vec<Result<TaskReport, PackError>> = pool.install(|| {
        use rayon::prelude::*;
        (0..world_size)
            .into_par_iter()
            .map(|rank| {
                let task = TaskSpec { rank, world_size }.at(out);
                run_task(inputs, task, options, &mut |p| progress(rank, p))
            })
            .collect()
    });
    let reports = reports.into_iter().collect::<Result<Vec<_>, _>>()?;
    // Merge once more: with several threads the last two tasks may each have
    // seen the other's marker missing.
    merge_if_complete(out, options, world_size)?;
    Ok(reports)
}

fn write_sequence(writer: &mut MdsWriter, s: &Sequence<'_>) -> Result<(), PackError> {
    let n = s.input_ids.len() / 4;
    let mut sample = vec![
        (columns::DOMAIN, Value::Str(Cow::Borrowed(s.domain))),
        (
            columns::INDICES,
            Value::Array(Array::from_u32(s.indices).with_shape(vec![s.indices.len() / 2, 2])),
        ),
        (
            columns::INPUT_IDS,
            Value::Array(Array {
                dtype: Dtype::U32,
                shape: vec![n],
                data: Cow::Borrowed(s.input_ids),
            }),
        ),
        (columns::LENGTH, Value::Int(n as i64)),
    ];
    if let Some(mask) = s.mask {
        sample.push((columns::MASK, Value::Array(Array::from_u8(mask))));
    }
    writer.write(&sample)?;
    Ok(())
}

fn read_record(path: &Path) -> Result<TaskRecord, PackError> {
    let text = std::fs::read(path).map_err(|e| PackError::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| {
        InputError::BadInput {
            path: path.to_path_buf(),
            reason: format!("not a pack stats file: {e}"),
        }
        .into()
    })
}

fn remove_file_if_exists(path: &Path) -> Result<(), PackError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PackError::io(path, e)),
        _ => Ok(()),
    }
}

/// The folders that get a merged index.json: each subset folder and its
/// ancestors below `out`, deepest first, then `out` itself.
fn merged_dirs(out: &Path, options: &PackOptions) -> Vec<PathBuf> {
    let mut rels: BTreeSet<(usize, PathBuf)> = BTreeSet::new();
    for subset in options.subsets() {
        let mut rel = PathBuf::from(&subset);
        while rel.as_os_str() != "" && rel.as_os_str() != "." {
            rels.insert((rel.components().count(), rel.clone()));
            rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        }
    }
    let mut dirs: Vec<PathBuf> = rels.into_iter().rev().map(|(_, r)| out.join(r)).collect();
    dirs.push(out.to_path_buf());
    dirs
}

/// The records of every completed task of the run.
pub fn read_all_stats(out: &Path, world_size: usize) -> Result<Vec<TaskRecord>, PackError> {
    (0..world_size)
        .map(|rank| TaskSpec { rank, world_size }.at(out))
        .filter(|t| t.is_done())
        .map(|t| read_record(&t.stats_path()))
        .collect()
}

/// Writes the merged index.json of every subset folder and of `out` once
/// every task is complete (see [`Task::merge_if_complete_in`]); returns
/// whether the run is complete.
pub fn merge_if_complete(
    out: &Path,
    options: &PackOptions,
    world_size: usize,
) -> Result<bool, PackError> {
    let task = TaskSpec::new(0, world_size).map_err(|e| PackError::settings(e.to_string()))?;
    Ok(task
        .at(out)
        .merge_if_complete_in(&merged_dirs(out, options))?)
}
