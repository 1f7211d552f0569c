//! Helpers that prolong-eval's tests share with prolong-data's: prolong-eval's
//! `recall_common` includes this file by path (as every catalogue includes
//! `catalogue.rs`), so each exists once.

use std::path::{Path, PathBuf};

/// GPT-2's byte-to-character map of byte-level BPE.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| {
        (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    if printable(b) {
        return char::from(b);
    }
    let shifted = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shifted).unwrap()
}

/// Fixtures fetched by `make fixtures`, or `None` (and a line saying the test skipped).
pub fn fixture(rel: &str, test: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cache")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipped {test}: {} is missing (run `make fixtures`)",
            path.display()
        );
        None
    }
}
