//! Every integration test of prolong-data in one binary (one link instead of one per
//! file): each former `tests/NAME.rs` is the module `NAME`; the shared helpers
//! are modules of their own. Run one file's tests with `cargo test --test it NAME::`.

mod catalogue;
mod chat;
mod chat_synth;
mod cli_mds;
mod common;
mod filter;
mod fuzz_corpus;
mod hub;
mod mix;
mod pack_cli;
mod pack_golden;
mod pack_kill;
mod pack_task;
mod pack_unit;
mod parquet;
mod parquet_memory;
mod recipe;
mod repos;
mod sample;
mod stats;
mod tokenize_stage;
