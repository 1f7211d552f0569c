//! Tokenize plain text with a Hugging Face `tokenizer.json`.
//!
//! [`Tokenizer`] loads a tokenizer.json. When the tokenizer is a byte-level
//! BPE (GPT-2, Llama-3, Qwen2-style pre-tokenizer, no normalizer) it encodes
//! with a fast path of its own: a hand-written pre-tokenizer
//! ([`pretok::PreTokenizer`]), then BPE per pre-token with a per-encoder
//! cache. Every other tokenizer is served by the `tokenizers` crate.
//!
//! # The reference, and what "plain text" means
//!
//! The fast path's ids are identical to those of the `tokenizers` crate
//! configured by [`reference_tokenizer`] and called as
//! `encode_fast(text, false)`:
//!
//! - `add_special_tokens = false`: no BOS/EOS or template tokens are added.
//! - `set_encode_special_tokens(true)`: special added tokens written in the
//!   text (`<|end_of_text|>`, `<|begin_of_text|>`, ...) are NOT recognised;
//!   they are encoded as the plain text they are (`<`, `|`, `end`, ...). The
//!   corpus is text, and a document quoting a control token must not inject
//!   one. (By default the tokenizers crate does match them, even with
//!   `add_special_tokens = false`.) This is tiktoken's `encode_ordinary`.
//! - No truncation and no padding, whatever tokenizer.json says.
//!
//! A tokenizer with non-special added tokens (which the reference still
//! splits out of the text) takes the fallback, as does anything else the
//! fast path does not model; [`Tokenizer::fallback_reason`] says why.
//!
//! # Modules, in the order text goes through them
//!
//! - [`load`]: reading tokenizer.json, checking its ids, and choosing the fast
//!   path or the reference (there is no normaliser step: a tokenizer with one
//!   takes the reference);
//! - [`pretok`]: pre-tokenising (hand-written state machines for the regexes);
//! - `bpe`: merging each pre-token, with a per-encoder cache;
//! - [`Tokenizer`] and [`Encoder`]: encoding documents, batches and long
//!   documents (in `tokenizer`);
//! - `decode`: ids back to text;
//! - [`special`]: the special tokens of the recipe (Llama-3's).

mod bpe;
mod decode;
pub mod load;
pub mod pretok;
pub mod special;
mod tokenizer;

pub use load::reference_tokenizer;
pub use pretok::{CharClass, Pattern, PreTokenizer, char_class};
pub use special::{LLAMA3_BOS, LLAMA3_EOS, LLAMA3_EOT, SpecialToken};
pub use tokenizer::{Encoder, Tokenizer};

/// Errors from loading a tokenizer or from the reference encoder.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("tokenizer.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tokenizer.json: {0}")]
    Invalid(String),
    #[error("tokenizers crate: {0}")]
    Reference(String),
    /// Any of the above from a file: its path instead of "tokenizer.json".
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

type Result<T> = std::result::Result<T, TokenizeError>;

/// How many ids below the largest a tokenizer.json may leave to no token.
/// tokenizer.json allows such holes (ids reserved between the vocabulary and
/// the added tokens); bounding them bounds the tables sized by the largest id.
pub const MAX_UNUSED_IDS: usize = 1 << 16;
