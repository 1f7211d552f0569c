//! A packed training sequence: tokens, document boundaries, labels.

use std::ops::Range;

use crate::error::{Error, Result};

/// One packed sequence of `T` tokens cut into documents, as in ProLong's packed MDS
/// samples (`input_ids`, `indices`, optional `mask`).
///
/// * Attention: each document attends causally within itself. `indices` are `[start, end)`
///   pieces, sorted and disjoint; empty pieces are ignored; a token no piece covers forms a
///   document of its own (it attends only to itself). RoPE positions are positions in the
///   packed sequence (token `t` has position `t`).
/// * Labels: token `t` is trained to predict `input_ids[t + 1]` when `t + 1` lies in the
///   same document, so the last token of each document has no target and the first token
///   of a document is never a label; pieces of ≤ 1 token give no labels.
/// * Mask (SFT): labels are shifted as in HF/ProLong (`labels = input_ids` with masked
///   tokens set to −100, then shifted by one), so the prediction made at `t` counts only
///   when `mask[t + 1] == 1` — the mask marks the tokens to be *predicted*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSequence {
    input_ids: Vec<u32>,
    segments: Vec<Range<usize>>,
    label_positions: Vec<u32>,
    label_targets: Vec<u32>,
}

impl PackedSequence {
    /// Validates `indices` (and `mask`, one byte per token) against `input_ids`.
    pub fn new(input_ids: Vec<u32>, indices: &[[usize; 2]], mask: Option<&[u8]>) -> Result<Self> {
        let t = input_ids.len();
        match mask {
            Some(m) if m.len() != t => {
                return Err(Error::Sequence(format!(
                    "mask has {} entries for {t} tokens",
                    m.len()
                )));
            }
            _ => {}
        }
        let mut segments = Vec::with_capacity(indices.len());
        let mut next = 0usize;
        for (i, &[s, e]) in indices.iter().enumerate() {
            if s > e || e > t {
                return Err(Error::Sequence(format!(
                    "piece {i} [{s}, {e}) is not within [0, {t})"
                )));
            }
            if s < next {
                return Err(Error::Sequence(format!(
                    "piece {i} [{s}, {e}) overlaps or precedes the previous piece (ends at {next})"
                )));
            }
            if s == e {
                continue;
            }
            segments.extend((next..s).map(|u| u..u + 1));
            segments.push(s..e);
            next = e;
        }
        segments.extend((next..t).map(|u| u..u + 1));

        let (mut label_positions, mut label_targets) = (Vec::new(), Vec::new());
        for seg in &segments {
            for p in seg.start..seg.end.saturating_sub(1) {
                if mask.is_none_or(|m| m[p + 1] == 1) {
                    label_positions.push(p as u32);
                    label_targets.push(input_ids[p + 1]);
                }
            }
        }
        Ok(Self {
            input_ids,
            segments,
            label_positions,
            label_targets,
        })
    }

    /// The whole sequence as one document.
    pub fn single(input_ids: Vec<u32>) -> Self {
        let t = input_ids.len();
        Self {
            segments: std::iter::once(0..t).filter(|r| !r.is_empty()).collect(),
            label_positions: (0..t.saturating_sub(1) as u32).collect(),
            label_targets: input_ids.iter().skip(1).copied().collect(),
            input_ids,
        }
    }

    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// Attention documents, tiling `[0, T)` in order.
    pub fn segments(&self) -> &[Range<usize>] {
        &self.segments
    }

    /// RoPE positions: `0..T`.
    pub fn positions(&self) -> Vec<u32> {
        (0..self.len() as u32).collect()
    }

    /// Positions `t` whose prediction is trained, ascending.
    pub fn label_positions(&self) -> &[u32] {
        &self.label_positions
    }

    /// Target token of each label position.
    pub fn label_targets(&self) -> &[u32] {
        &self.label_targets
    }

    pub fn num_labels(&self) -> usize {
        self.label_positions.len()
    }
}
