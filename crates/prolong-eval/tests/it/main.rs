//! Every integration test of prolong-eval in one binary (one link instead of one per
//! file): each former `tests/NAME.rs` is the module `NAME`; the shared helpers
//! are modules of their own. Run one file's tests with `cargo test --test it NAME::`.

mod catalogue;
mod export;
mod ppl;
mod recall;
mod recall_cli;
mod recall_common;
mod recall_trained;
