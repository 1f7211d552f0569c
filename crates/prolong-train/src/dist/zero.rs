//! ZeRO (the layout of `[parallel] shard = "grad_op" | "full"`, `train/sharded.rs`): the
//! optimizer state (fp32 master weights and both Adam moments) of the flat
//! parameter vector is split into one contiguous shard per rank.
//!
//! All parameters are laid end to end in a fixed order (the order of the parameter list,
//! the same on every rank) into one flat vector of `numel` elements, padded to
//! `world · shard` so that NCCL's reduce-scatter and all-gather, which move equal counts
//! per rank, apply: each step, gradients are reduce-scattered (rank `r` receives the
//! sum over ranks of elements `r·shard .. (r+1)·shard`), rank `r` runs AdamW on the part of
//! its shard below `numel`, and the updated weights are all-gathered. The shard is
//! `ceil(numel / world)` rounded up to `align` elements (aligned, vectorised kernel
//! accesses); the padding is zero and never updated. Shards are equal, so ranks do equal
//! work, except the last ones, whose owned part ends at `numel` (and may be empty when
//! `numel` is tiny).

use std::ops::Range;

use super::{DistError, DistResult};

/// The flat parameter vector and its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroLayout {
    /// `[offset, offset + numel)` of each parameter in the flat vector, in order.
    params: Vec<Range<usize>>,
    world: usize,
    shard: usize,
}

/// A run of elements of one parameter that a rank owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPiece {
    /// Index of the parameter in the list given to [`ZeroLayout::new`].
    pub param: usize,
    /// Elements within the parameter (flattened row-major).
    pub in_param: Range<usize>,
    /// The same elements within the rank's shard.
    pub in_shard: Range<usize>,
}

impl ZeroLayout {
    /// `param_numels` in the parameter order every rank uses; `align ≥ 1`.
    pub fn new(param_numels: &[usize], world: usize, align: usize) -> DistResult<Self> {
        if world == 0 || align == 0 {
            return Err(DistError::Layout(format!(
                "ZeRO needs world ≥ 1 and align ≥ 1, got {world} and {align}"
            )));
        }
        let mut params = Vec::with_capacity(param_numels.len());
        let mut offset = 0usize;
        for &n in param_numels {
            params.push(offset..offset + n);
            offset += n;
        }
        let shard = offset.div_ceil(world).div_ceil(align) * align;
        Ok(Self {
            params,
            world,
            shard,
        })
    }

    /// Real elements (all parameters).
    pub fn numel(&self) -> usize {
        self.params.last().map_or(0, |r| r.end)
    }

    /// Elements per shard (the count of each rank in reduce-scatter / all-gather).
    pub fn shard_len(&self) -> usize {
        self.shard
    }

    /// Length of the flat buffers: `world · shard_len`, padding included.
    pub fn padded_len(&self) -> usize {
        self.world * self.shard
    }

    /// Offsets of each parameter in the flat vector.
    pub fn param_ranges(&self) -> &[Range<usize>] {
        &self.params
    }

    /// The real (unpadded) flat elements rank `rank` updates.
    pub fn owned(&self, rank: usize) -> Range<usize> {
        let start = (rank * self.shard).min(self.numel());
        start..((rank + 1) * self.shard).min(self.numel())
    }

    /// The parameter runs inside [`ZeroLayout::owned`]`(rank)`, in flat order.
    pub fn pieces(&self, rank: usize) -> Vec<OwnedPiece> {
        let own = self.owned(rank);
        let first = self.params.partition_point(|p| p.end <= own.start);
        self.params[first..]
            .iter()
            .enumerate()
            .take_while(|(_, p)| p.start < own.end)
            .filter_map(|(i, p)| {
                let (s, e) = (p.start.max(own.start), p.end.min(own.end));
                (s < e).then(|| OwnedPiece {
                    param: first + i,
                    in_param: s - p.start..e - p.start,
                    in_shard: s - own.start..e - own.start,
                })
            })
            .collect()
    }
}

/// One unit of a [`UnitLayout`]: a run of consecutive parameters with its own
/// [`ZeroLayout`], so that its all-gather and reduce-scatter move equal counts per rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's parameters (indices in the whole parameter list).
    pub params: Range<usize>,
    /// The unit's flat vector and its shards (parameter indices within the unit).
    pub zero: ZeroLayout,
    /// Where the unit's shard starts in a rank's local shard.
    pub offset: usize,
}

/// FSDP's flat parameters: the parameter list cut into units (for `shard = "full"`:
/// the embedding, each decoder layer, the final norm and head), each unit flattened
/// and sharded on its own. A rank's local shard is its shards of every unit, end to
/// end; a unit is gathered (or its gradient reduce-scattered) without touching the
/// others. One unit of every parameter is [`ZeroLayout`]'s single flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLayout {
    units: Vec<Unit>,
    numel: usize,
}

impl UnitLayout {
    /// `param_numels` in the parameter order every rank uses, cut at `units` (ranges of
    /// parameter indices that cover the list in order).
    pub fn new(
        param_numels: &[usize],
        units: &[Range<usize>],
        world: usize,
        align: usize,
    ) -> DistResult<Self> {
        let mut out = Vec::with_capacity(units.len());
        let (mut next, mut offset) = (0, 0);
        for r in units {
            if r.start != next || r.end < r.start || r.end > param_numels.len() {
                return Err(DistError::Layout(format!(
                    "unit {r:?} does not continue the units before it (next parameter {next} of {})",
                    param_numels.len()
                )));
            }
            let zero = ZeroLayout::new(&param_numels[r.clone()], world, align)?;
            let len = zero.shard_len();
            out.push(Unit {
                params: r.clone(),
                zero,
                offset,
            });
            (next, offset) = (r.end, offset + len);
        }
        if next != param_numels.len() {
            return Err(DistError::Layout(format!(
                "the units cover {next} of {} parameters",
                param_numels.len()
            )));
        }
        Ok(Self {
            units: out,
            numel: param_numels.iter().sum(),
        })
    }

    /// Real elements (all parameters).
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Elements of a rank's local shard (its shard of every unit).
    pub fn shard_len(&self) -> usize {
        self.units
            .last()
            .map_or(0, |u| u.offset + u.zero.shard_len())
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The parameter runs rank `rank` owns, in parameter order: `param` indexes the
    /// whole list, `in_shard` the rank's local shard.
    pub fn pieces(&self, rank: usize) -> Vec<OwnedPiece> {
        let mut out = Vec::new();
        for u in &self.units {
            out.extend(u.zero.pieces(rank).into_iter().map(|p| OwnedPiece {
                param: u.params.start + p.param,
                in_param: p.in_param,
                in_shard: u.offset + p.in_shard.start..u.offset + p.in_shard.end,
            }));
        }
        out
    }
}
