//! Every integration test of prolong-mds in one binary (one link instead of one per
//! file): each former `tests/NAME.rs` is the module `NAME`; the shared helpers
//! are modules of their own. Run one file's tests with `cargo test --test it NAME::`.

mod bad_input;
mod common;
mod docs;
mod fuzz_corpus;
mod golden;
mod streaming_interop;
mod verify;
