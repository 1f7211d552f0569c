//! The varlen form of a packed sequence's documents, as the fused attention kernel takes
//! it: `cu_seqlens` (document starts, then `T`) and the longest document.
//!
//! The documents are [`PackedSequence::segments`](crate::PackedSequence::segments), which
//! already tile `[0, T)`: a token no `indices` piece covers (and every piece of one token)
//! is a one-token document attending only to itself, exactly as the CPU attention treats
//! it; empty pieces were dropped when the sequence was built.

use std::ops::Range;

use crate::SequenceError;

/// Document boundaries of one packed sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuSeqlens {
    /// `[0, end of doc 0, end of doc 1, …, T]`: document `i` is `cu[i]..cu[i + 1]`.
    pub cu: Vec<u32>,
    /// Tokens in the longest document (0 for an empty sequence).
    pub max_seqlen: u32,
}

impl CuSeqlens {
    /// From documents tiling `[0, T)` in order.
    pub fn from_segments(segments: &[Range<usize>]) -> Result<Self, SequenceError> {
        let mut cu = Vec::with_capacity(segments.len() + 1);
        cu.push(0u32);
        let mut max_seqlen = 0usize;
        for (i, seg) in segments.iter().enumerate() {
            let next = *cu.last().expect("starts with 0") as usize;
            if seg.start != next || seg.end <= seg.start {
                return Err(SequenceError(format!(
                    "document {i} {seg:?} does not continue the tiling at {next}"
                )));
            }
            cu.push(u32::try_from(seg.end).map_err(|_| {
                SequenceError(format!("document end {} does not fit in u32", seg.end))
            })?);
            max_seqlen = max_seqlen.max(seg.len());
        }
        Ok(Self {
            cu,
            max_seqlen: max_seqlen as u32,
        })
    }

    pub fn num_docs(&self) -> usize {
        self.cu.len() - 1
    }

    /// Tokens in the sequence.
    pub fn total(&self) -> usize {
        *self.cu.last().expect("never empty") as usize
    }

    /// The work list of the varlen attention kernels: `(document, first token)` of every
    /// tile of `block` consecutive tokens within one document (the last tile of a document
    /// may be shorter), flattened as `[doc0, start0, doc1, start1, …]`. One GPU block per
    /// tile: documents of any mix of lengths launch no idle blocks.
    pub fn tiles(&self, block: usize) -> Vec<u32> {
        let block = block.max(1);
        let mut out = Vec::new();
        for (doc, w) in self.cu.windows(2).enumerate() {
            for start in (w[0] as usize..w[1] as usize).step_by(block) {
                out.extend([doc as u32, start as u32]);
            }
        }
        out
    }

    /// The document holding token `t` (`t < total`), by binary search.
    pub fn doc_of(&self, t: usize) -> usize {
        self.cu.partition_point(|&c| c as usize <= t) - 1
    }
}
