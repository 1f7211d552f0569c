//! The tokenizer's integration tests, one binary: the fast path against the
//! tokenizers crate (the reference, configured by `reference_tokenizer`) with
//! identical ids on small byte-level BPE tokenizers built here (no fixtures
//! needed) and on Llama-3's when fixtures/cache/tokenizer.json is present;
//! edge cases, random texts (the fuzzing), fixture texts; `encode_long` and
//! `encode_batch` against `encode`; the fallback for other tokenizers; the
//! loader's checks of ids; and the hand-written pre-tokenizers against
//! Oniguruma.

mod identity;
mod llama3;
mod load;
mod pretok;
mod texts;
mod tiny;
