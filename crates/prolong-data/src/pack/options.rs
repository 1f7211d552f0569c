use serde::{Deserialize, Serialize};

use super::error::PackError;
use crate::tokenize::{LLAMA3_BOS, LLAMA3_EOS};

/// Settings of the pack stage. Everything that changes the output bytes is
/// here (and is recorded in each task's stats file, so that a re-run with
/// other settings is refused instead of mixing outputs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackOptions {
    /// N: every output sequence holds exactly this many tokens.
    pub seq_len: usize,
    /// A piece carried over after a sequence is emitted (the tail of the
    /// document that overflowed it) is dropped when shorter than this.
    /// 0 and 1 both mean "keep every non-empty piece".
    pub min_length: usize,
    /// Target lengths (e.g. 65536, 524288): each document (with its BOS/EOS)
    /// is cut into chunks of the largest target that still fits, each chunk
    /// packed into the buffer of its length; the remainder shorter than the
    /// smallest target is dropped. Empty: no splitting.
    pub split_by_lengths: Vec<usize>,
    /// Every sequence starts at a document start: what overflows a sequence
    /// is dropped instead of carried over (with splitting: only the first
    /// chunk of each document is used).
    pub intact: bool,
    /// Added before each document unless it already starts with it.
    pub bos: Option<u32>,
    /// Added after each document unless it already ends with it.
    pub eos: Option<u32>,
    /// Sub-folder (and `domain` value) the output goes to; `None` packs into
    /// the output root with domain "." as the reference does.
    pub domain: Option<String>,
    /// Shard size limit of the output (64 MiB by default).
    pub size_limit: Option<u64>,
    /// Output compression ("zstd", "zstd:LEVEL"); none by default.
    pub compression: Option<String>,
}

impl PackOptions {
    /// Greedy packing to `seq_len` with Llama-3 BOS/EOS and the defaults.
    pub fn new(seq_len: usize) -> PackOptions {
        PackOptions {
            seq_len,
            min_length: 1,
            split_by_lengths: Vec::new(),
            intact: false,
            bos: Some(LLAMA3_BOS.id),
            eos: Some(LLAMA3_EOS.id),
            domain: None,
            size_limit: Some(prolong_mds::DEFAULT_SIZE_LIMIT),
            compression: None,
        }
    }

    pub fn min_length(mut self, min_length: usize) -> Self {
        self.min_length = min_length;
        self
    }

    pub fn split_by_lengths(mut self, lengths: impl Into<Vec<usize>>) -> Self {
        self.split_by_lengths = lengths.into();
        self
    }

    pub fn intact(mut self, intact: bool) -> Self {
        self.intact = intact;
        self
    }

    pub fn special_tokens(mut self, bos: Option<u32>, eos: Option<u32>) -> Self {
        self.bos = bos;
        self.eos = eos;
        self
    }

    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    pub fn check(&self) -> Result<(), PackError> {
        if self.seq_len == 0 || self.seq_len > u32::MAX as usize {
            return Err(PackError::settings(format!(
                "sequence length {} must be in 1..=2^32-1",
                self.seq_len
            )));
        }
        if self.split_by_lengths.contains(&0) {
            return Err(PackError::settings("split lengths must be positive"));
        }
        let mut sorted = self.split_by_lengths.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.split_by_lengths.len() {
            return Err(PackError::settings(format!(
                "split lengths {:?} repeat a length",
                self.split_by_lengths
            )));
        }
        if let Some(domain) = &self.domain {
            let ok = !domain.is_empty()
                && domain
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..");
            if !ok {
                return Err(PackError::settings(format!(
                    "domain {domain:?} must be a relative folder name without . or .."
                )));
            }
        }
        prolong_mds::Compression::parse(self.compression.as_deref())?;
        Ok(())
    }

    /// Split targets, longest first (the order chunks are tried in).
    pub(crate) fn targets_desc(&self) -> Vec<usize> {
        let mut t = self.split_by_lengths.clone();
        t.sort_unstable_by(|a, b| b.cmp(a));
        t
    }

    /// The output sub-datasets, in buffer order: `domain` (or ".") without
    /// splitting, else `[domain/]{target}-{seq_len}` for each target, longest
    /// target first. The name is also the `domain` column of its sequences.
    pub fn subsets(&self) -> Vec<String> {
        let prefix = self.domain.as_deref();
        if self.split_by_lengths.is_empty() {
            return vec![prefix.unwrap_or(".").to_string()];
        }
        self.targets_desc()
            .into_iter()
            .map(|t| match prefix {
                Some(p) => format!("{p}/{t}-{}", self.seq_len),
                None => format!("{t}-{}", self.seq_len),
            })
            .collect()
    }
}
