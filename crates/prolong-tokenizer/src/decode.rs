//! Ids back to text.

use crate::tokenizer::Kind;
use crate::{Result, TokenizeError, Tokenizer};

/// Token id -> the bytes it stands for, in one buffer.
pub(crate) struct Pieces {
    bytes: Vec<u8>,
    /// `bytes[ends[id - 1]..ends[id]]` (from 0 for id 0) are token `id`'s bytes.
    ends: Vec<usize>,
}

impl Pieces {
    /// `tokens`: (bytes, id) of the vocabulary, any order; ids without bytes decode to
    /// nothing.
    pub(crate) fn new(tokens: &[(Vec<u8>, u32)]) -> Pieces {
        let mut by_id: Vec<&(Vec<u8>, u32)> = tokens.iter().collect();
        by_id.sort_unstable_by_key(|t| t.1);
        let n = by_id.last().map_or(0, |t| t.1 as usize + 1);
        let mut bytes = Vec::with_capacity(tokens.iter().map(|t| t.0.len()).sum());
        let mut ends = Vec::with_capacity(n);
        let mut next = by_id.into_iter().peekable();
        for id in 0..n as u32 {
            if let Some((b, _)) = next.next_if(|t| t.1 == id) {
                bytes.extend_from_slice(b);
            }
            // A second string with the same id (a malformed vocabulary): the first wins.
            while next.next_if(|t| t.1 == id).is_some() {}
            ends.push(bytes.len());
        }
        Pieces { bytes, ends }
    }

    pub(crate) fn get(&self, id: u32) -> &[u8] {
        let id = id as usize;
        match self.ends.get(id) {
            Some(&end) => &self.bytes[if id == 0 { 0 } else { self.ends[id - 1] }..end],
            None => &[],
        }
    }
}

impl Tokenizer {
    /// The text of `ids`, special (added) tokens left out, as the `tokenizers`
    /// crate's `decode(ids, skip_special_tokens = true)` gives it (and HF
    /// evaluation harnesses read generations): the fast path joins the tokens'
    /// bytes and replaces invalid UTF-8 with U+FFFD, as the byte-level decoder
    /// does. Ids outside the vocabulary are skipped, as there.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.kind {
            Kind::Fast(fast) => {
                let mut bytes = Vec::new();
                for &id in ids {
                    if self.added.iter().all(|&(_, a)| a != id) {
                        bytes.extend_from_slice(fast.pieces.get(id));
                    }
                }
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Kind::Reference { tok, .. } => tok
                .decode(ids, true)
                .map_err(|e| TokenizeError::Reference(e.to_string())),
        }
    }
}
