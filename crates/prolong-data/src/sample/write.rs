//! This task's part of a source: the documents the plan takes from its
//! shards, copied in input order.

use std::path::Path;

use super::draw::Plan;
use super::run::Progress;
use super::{SampleOptions, Source, TaskSourceStats};
use crate::StageError;
use crate::filter::input::{DocCopier, InputShard, for_each_doc};
use crate::task::LengthHistogram;

/// What [`write_part`] wrote.
pub(super) struct Part {
    pub(super) stats: TaskSourceStats,
    pub(super) histogram: LengthHistogram,
}

/// Copies the documents the plan takes from this task's shards (`mine`)
/// into `dir`, in input order; shards with nothing taken are not read.
pub(super) fn write_part(
    source: &Source,
    shards: &[InputShard],
    mine: &[bool],
    plan: &Plan,
    dir: &Path,
    options: &SampleOptions,
    progress: &mut Progress<'_, '_>,
) -> Result<Part, StageError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|err| StageError::Io {
            path: dir.to_path_buf(),
            err,
        })?;
    }
    let mut drawn = DocCopier::create(dir, &shards[0], options.size_limit)?;
    let mut stats = TaskSourceStats {
        name: source.name.clone(),
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut first = 0usize;
    for (shard, &mine) in shards.iter().zip(mine) {
        let docs = first..first + shard.samples() as usize;
        first = docs.end;
        if !mine {
            continue;
        }
        stats.documents_in += shard.samples();
        stats.tokens_in += plan.lengths[docs.clone()]
            .iter()
            .map(|&l| l as u64)
            .sum::<u64>();
        if plan.take[docs.clone()].contains(&true) {
            for_each_doc(shard, &mut buf, |i, doc| {
                if plan.take[docs.start + i] {
                    drawn.copy(shard, i, doc)?;
                }
                Ok(())
            })?;
        }
        progress.add(shard.samples());
    }
    let drawn = drawn.finish()?;
    stats.documents_out = drawn.documents;
    stats.tokens_out = drawn.tokens;
    Ok(Part {
        stats,
        histogram: drawn.histogram,
    })
}
