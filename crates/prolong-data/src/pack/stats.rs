use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::task::LengthHistogram;

/// What one pack task (or a whole run, summed) did. Token counts hold:
/// `tokens_in + special_tokens_added == tokens_out + tokens_dropped`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackStats {
    pub documents_in: u64,
    /// Documents of which at least one token is in an emitted sequence.
    pub documents_out: u64,
    /// Input tokens, without the BOS/EOS the packer adds.
    pub tokens_in: u64,
    pub special_tokens_added: u64,
    /// `sequences * seq_len`.
    pub tokens_out: u64,
    pub tokens_dropped: u64,
    pub dropped: Dropped,
    pub sequences: u64,
    /// Document pieces over all sequences (= rows of all `indices`).
    pub pieces: u64,
    pub sequences_per_subset: BTreeMap<String, u64>,
    /// Input documents by length (tokens without BOS/EOS), in power-of-two
    /// buckets, as every stage reports them.
    pub length_histogram: LengthHistogram,
}

/// Where dropped tokens went (they include dropped BOS/EOS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Carried-over tails shorter than `min_length`.
    pub min_length: u64,
    /// Overflow discarded by `intact`.
    pub intact: u64,
    /// Document remainders shorter than the smallest split length.
    pub split_remainder: u64,
    /// The partial buffers left at the end.
    pub last_buffer: u64,
}

impl PackStats {
    pub(crate) fn add_document(&mut self, tokens: usize) {
        self.documents_in += 1;
        self.tokens_in += tokens as u64;
        self.length_histogram.add(tokens as u64);
    }

    pub(crate) fn add_sequence(&mut self, subset: &str, seq_len: usize, pieces: usize) {
        self.sequences += 1;
        self.pieces += pieces as u64;
        self.tokens_out += seq_len as u64;
        *self
            .sequences_per_subset
            .entry(subset.to_string())
            .or_default() += 1;
    }

    pub(crate) fn finish(&mut self) {
        let d = &self.dropped;
        self.tokens_dropped = d.min_length + d.intact + d.split_remainder + d.last_buffer;
    }

    /// Sums the statistics of several tasks.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a PackStats>) -> PackStats {
        let mut total = PackStats::default();
        for s in all {
            total.documents_in += s.documents_in;
            total.documents_out += s.documents_out;
            total.tokens_in += s.tokens_in;
            total.special_tokens_added += s.special_tokens_added;
            total.tokens_out += s.tokens_out;
            total.tokens_dropped += s.tokens_dropped;
            total.dropped.min_length += s.dropped.min_length;
            total.dropped.intact += s.dropped.intact;
            total.dropped.split_remainder += s.dropped.split_remainder;
            total.dropped.last_buffer += s.dropped.last_buffer;
            total.sequences += s.sequences;
            total.pieces += s.pieces;
            for (k, v) in &s.sequences_per_subset {
                *total.sequences_per_subset.entry(k.clone()).or_default() += v;
            }
            total.length_histogram.merge(&s.length_histogram);
        }
        total
    }
}
