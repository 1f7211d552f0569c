//! The contract between ProLong's corpus stages (`prolong-data`: tokenize, chat, pack,
//! mix) and its trainer (`prolong-train`), in one place both sides depend on:
//!
//! * [`columns`] — the names and MDS encodings of a tokenized and of a packed sample;
//! * [`sample`] — the one validation rule for a packed sample's `indices` and `mask`,
//!   used by `prolong-data verify`, the trainer's loader and [`PackedSequence`];
//! * [`PackedSequence`] — a checked sequence turned into what the model uses:
//!   attention documents, positions, labels;
//! * [`CuSeqlens`] — a sequence's documents in the varlen form (`cu_seqlens`) that
//!   FlashAttention-style kernels take;
//! * [`Manifest`] — the mixture manifest `prolong-data mix` writes and the trainer
//!   reads, one serde type for both.
//!
//! The byte format underneath (MDS shards) is `prolong-mds`, which knows nothing of
//! these columns. docs/packed-sample.md describes the contract for users.

pub mod columns;
pub mod manifest;
pub mod sample;
mod sequence;
pub mod varlen;

pub use manifest::{
    Manifest, ManifestError, ManifestStream, ProportionError, normalize_proportions, split_weight,
};
pub use sample::check_sample;
pub use sequence::{PackedSequence, SequenceError};
pub use varlen::CuSeqlens;
