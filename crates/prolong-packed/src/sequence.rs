//! A packed training sequence: tokens, document boundaries, labels.

use std::ops::Range;

use crate::sample::check_pieces;

/// A packed sequence that breaks the rule of [`crate::sample`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid packed sequence: {0}")]
pub struct SequenceError(pub String);

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
    pub fn new(
        input_ids: Vec<u32>,
        indices: &[[usize; 2]],
        mask: Option<&[u8]>,
    ) -> Result<Self, SequenceError> {
        let t = input_ids.len();
        if let Some(m) = mask
            && m.len() != t
        {
            return Err(SequenceError(format!(
                "mask has {} values for {t} tokens",
                m.len()
            )));
        }
        check_pieces(indices, t).map_err(SequenceError)?;
        let mut segments = Vec::with_capacity(indices.len());
        let mut next = 0usize;
        for &[s, e] in indices.iter().filter(|[s, e]| s < e) {
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

/// Documents, labels and the SFT mask convention.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_documents() {
        let ids: Vec<u32> = (100..110).collect();
        let seq = PackedSequence::new(ids, &[[0, 4], [4, 5], [5, 8]], None).unwrap();
        // tokens 8 and 9 are covered by no piece: one-token documents of their own
        let segs: Vec<_> = seq.segments().to_vec();
        assert_eq!(segs, vec![0..4, 4..5, 5..8, 8..9, 9..10]);
        assert_eq!(seq.label_positions(), &[0, 1, 2, 5, 6]);
        assert_eq!(seq.label_targets(), &[101, 102, 103, 106, 107]);
        assert_eq!(seq.num_labels(), 5);
        assert_eq!(seq.positions(), (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn mask_selects_predicted_tokens() {
        let ids: Vec<u32> = (0..8).collect();
        // prediction at t counts when mask[t + 1] == 1
        let mask = [1u8, 0, 1, 1, 0, 1, 1, 0];
        let seq = PackedSequence::new(ids, &[[0, 5], [5, 8]], Some(&mask)).unwrap();
        assert_eq!(seq.label_positions(), &[1, 2, 5]);
        assert_eq!(seq.label_targets(), &[2, 3, 6]);
    }

    #[test]
    fn empty_pieces_are_ignored_and_single_covers_everything() {
        let seq = PackedSequence::new(vec![1, 2, 3], &[[0, 0], [0, 3], [3, 3]], None).unwrap();
        assert_eq!(seq.segments().to_vec(), vec![0..3]);
        assert_eq!(seq, PackedSequence::single(vec![1, 2, 3]));
        assert_eq!(seq.num_labels(), 2);
    }

    #[test]
    fn malformed_indices_and_mask_are_errors() {
        let ids = || vec![0u32; 6];
        for bad in [
            vec![[0, 7]],
            vec![[3, 2]],
            vec![[0, 4], [3, 6]],
            vec![[3, 6], [0, 2]],
        ] {
            let err = PackedSequence::new(ids(), &bad, None).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid packed sequence: {}",
                    check_pieces(&bad, 6).unwrap_err()
                )
            );
        }
        let err = PackedSequence::new(ids(), &[[0, 6]], Some(&[1, 1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid packed sequence: mask has 2 values for 6 tokens"
        );
    }
}
