//! The draw: every document's length read, then whole documents taken in a
//! seeded random order up to the source's target (the same plan in every task).

use prolong_rng::SplitMix64;

use super::run::Progress;
use super::{SampleOptions, Source, SourceReport};
use crate::StageError;
use crate::filter::input::{InputError, InputShard, for_each_doc};

/// One source's share of the global plan.
pub(super) struct Plan {
    /// Every document's length, in input order.
    pub(super) lengths: Vec<u32>,
    /// Whether the draw takes it.
    pub(super) take: Vec<bool>,
    /// `achieved_share` is filled in once every source is drawn.
    pub(super) report: SourceReport,
}

/// Reads every document's length and draws (see the module docs): the same
/// plan in every task.
pub(super) fn draw(
    source: &Source,
    shards: &[InputShard],
    requested_share: f64,
    target: u64,
    options: &SampleOptions,
    progress: &mut Progress<'_, '_>,
) -> Result<Plan, StageError> {
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
    let n = u32::try_from(lengths.len()).map_err(|_| StageError::Source {
        name: source.name.clone(),
        path: source.path.clone(),
        reason: "the document count does not fit 32 bits".into(),
    })?;
    let available_tokens: u64 = lengths.iter().map(|&l| l as u64).sum();

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
        let fits = achieved + len <= target;
        if fits || achieved + len - target < target - achieved {
            take[i as usize] = true;
            achieved += len;
            documents += 1;
        }
        if !fits {
            break;
        }
    }
    Ok(Plan {
        lengths,
        take,
        report: SourceReport {
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
        },
    })
}
