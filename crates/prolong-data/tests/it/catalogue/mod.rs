//! The catalogue of malformed inputs for `prolong-data`: MDS datasets,
//! JSONL, Parquet and MediaWiki XML documents, tokenizer.json files,
//! repositories and recipes. Each row builds one bad input and names the
//! exact outcome: one error line naming the file and position, or the bad
//! record counted under its reason (see `common/catalogue.rs`).

use crate::common;

use std::path::Path;

use crate::common::catalogue::{Case, Outcome, run};
use serde_json::{Value, json};

mod documents;
mod mds;
mod runs;

const BIN: &str = env!("CARGO_BIN_EXE_prolong-data");

/// Exit status 0 with `counts` at `pointer` of the printed JSON.
const fn skipped(pointer: &'static str, counts: &'static [(&'static str, u64)]) -> Outcome {
    Outcome::Skips { pointer, counts }
}

/// A copy of the golden MDS dataset `name` in `dir/ds`.
fn golden(dir: &Path, name: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/mds-golden")
        .join(name);
    let to = dir.join("ds");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn catalogue() {
    let cases = [
        mds::CASES,
        documents::CASES,
        documents::PARQUET_CASES,
        runs::CASES,
    ];
    run(BIN, cases.into_iter().flatten());
}
