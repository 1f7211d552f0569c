//! Helpers that the tests of prolong-eval, prolong-train and prolong-mds share
//! with prolong-data's: their common modules include this file by path (as every
//! catalogue includes `catalogue.rs`), so each exists once.

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

/// `output` of a finished command, failing the test with its stderr unless
/// it succeeded.
pub fn succeeded(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The names of the entries of `dir` (hidden ones too), sorted.
pub fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy of the folder `from` (and every folder in it) at `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
