//! The tokenize stage ([`stage`]): documents in, tokenized MDS out.
//!
//! The tokenizer itself (the fast byte-level BPE whose ids equal the
//! `tokenizers` crate's, tokenizer.json loading, the special tokens) is the
//! `prolong-tokenizer` crate, so that a crate that needs only to encode
//! (prolong-eval) does not compile the corpus stages' dependencies. Its items
//! are re-exported here so that `prolong_data::tokenize::Tokenizer` and the
//! like keep working.

pub mod stage;

pub use prolong_tokenizer::{
    CharClass, Encoder, LLAMA3_BOS, LLAMA3_EOS, LLAMA3_EOT, MAX_UNUSED_IDS, Pattern, PreTokenizer,
    SpecialToken, TokenizeError, Tokenizer, char_class, pretok, reference_tokenizer,
};
