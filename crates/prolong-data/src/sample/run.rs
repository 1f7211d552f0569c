//! One task of the stage: the checks, the global draw of every source, this
//! task's part written, its stats and marker, and the merge once all are done.

use std::path::PathBuf;

use serde::Serialize;

use super::draw::draw;
use super::report::{RULE, same_request};
use super::source::{check_names, targets};
use super::write::write_part;
use super::{REPORT_FILE, SampleOptions, SampleOutcome, SampleReport, SampleTaskStats, Source};
use crate::StageError;
use crate::filter::input::{InputShard, plan_shards};
use crate::task::{
    InOutCounts, LengthHistogram, OnProgress, Task, TaskSpec, remove_file_if_present,
};

/// What a task's marker records (see [`Task::check_output`]).
#[derive(Serialize)]
struct SampleSettings<'a> {
    sources: &'a [Source],
    #[serde(flatten)]
    options: &'a SampleOptions,
}

/// Runs task `task` of the stage (see the module docs), then writes the
/// merged indices and `sample.json` if it finds every task complete.
/// `on_progress` counts documents read: every source's lengths, then this
/// task's shards.
pub fn sample_task(
    sources: &[Source],
    task: Task<'_>,
    options: &SampleOptions,
    on_progress: &mut OnProgress<'_>,
) -> Result<SampleOutcome, StageError> {
    let targets = targets(sources, options.total_tokens)?;
    check_names(sources)?;
    let out = task.out;
    // Markers in OUT, task folders in OUT/<source>.
    let dirs: Vec<PathBuf> = std::iter::once(out.to_path_buf())
        .chain(sources.iter().map(|s| out.join(&s.name)))
        .collect();
    task.spec
        .check_world_size(dirs.iter().map(PathBuf::as_path))?;
    let settings = SampleSettings { sources, options };
    let inputs: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
    task.check_output(&inputs, &settings)?;
    if task.is_done() {
        let stats = read_task_stats(task)?;
        if !same_request(&stats.report, sources, options) {
            return Err(StageError::changed(
                task,
                "other sources, shares, tokens or seed",
            ));
        }
        let merged = finish_if_complete(sources, task)?;
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
                return Err(StageError::Source {
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
    task.remove_stale_temps()?;
    for s in sources {
        remove_file_if_present(&out.join(&s.name).join(prolong_mds::INDEX_FILE))?;
    }

    // Shard g of the concatenated sources is task (g mod N)'s.
    let mut mine = Vec::with_capacity(plans.len());
    let mut first = 0;
    for shards in &plans {
        mine.push(
            (first..first + shards.len()).map(|g| g % task.spec.world_size == task.spec.rank),
        );
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
        header: task.spec.header(),
        shards: Vec::new(),
        sources: Vec::with_capacity(sources.len()),
        counts: InOutCounts::default(),
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
        let dir = out.join(&source.name).join(task.spec.name());
        let part = write_part(source, shards, mine, &plan, &dir, options, &mut progress)?;
        stats.shards.extend(
            shards
                .iter()
                .zip(mine)
                .filter(|(_, m)| **m)
                .map(|(s, _)| s.label()),
        );
        stats.counts.add(&part.stats.counts());
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
    task.complete(&stats, &settings)?;
    let merged = finish_if_complete(sources, task)?;
    Ok(SampleOutcome {
        report: stats.report.clone(),
        stats,
        skipped: false,
        merged,
    })
}

/// Once every task is done: each source's merged index.json, then
/// `sample.json`, the report as rank 0's stats file holds it (so its bytes
/// do not depend on which task writes it, nor on a float's trip through
/// JSON). Returns whether it found the run complete.
fn finish_if_complete(sources: &[Source], task: Task<'_>) -> Result<bool, StageError> {
    let dirs: Vec<PathBuf> = sources.iter().map(|s| task.out.join(&s.name)).collect();
    if !task.merge_if_complete_in(&dirs)? {
        return Ok(false);
    }
    let report_path = task.out.join(REPORT_FILE);
    if !report_path.is_file() {
        let first = TaskSpec {
            rank: 0,
            ..task.spec
        }
        .at(task.out);
        let stats = read_task_stats(first)?;
        let json = serde_json::to_vec_pretty(&stats.report).expect("the report is plain data");
        prolong_mds::write_atomic(&report_path, &json)?;
    }
    Ok(true)
}

/// A completed task's stats file.
fn read_task_stats(task: Task<'_>) -> Result<SampleTaskStats, StageError> {
    task.read_stats()
        .ok_or_else(|| StageError::changed(task, "its stats file is unreadable"))
}

pub(super) struct Progress<'a, 'b> {
    done: u64,
    total: u64,
    f: &'a mut OnProgress<'b>,
}

impl Progress<'_, '_> {
    pub(super) fn add(&mut self, n: u64) {
        self.done += n;
        (self.f)(self.done, self.total);
    }
}
