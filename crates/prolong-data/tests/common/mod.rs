//! Shared by prolong-data's integration tests.
#![allow(dead_code)]

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

/// A byte-level BPE tokenizer.json with the 256 byte tokens (id = byte) and
/// no merges, GPT-2's pre-tokenizer: one token per byte of text, so tests can
/// predict every id.
pub fn byte_tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..=255u8)
        .map(|b| (byte_char(b).to_string(), serde_json::Value::from(b as u32)))
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []
        }
    })
    .to_string()
}

pub fn write_byte_tokenizer(dir: &Path) -> PathBuf {
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, byte_tokenizer_json()).unwrap();
    path
}

/// Every file under `dir`, relative path → bytes.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
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

/// (domain, input_ids) of every sample of a tokenized dataset, checking that
/// `length` agrees with the ids.
pub fn read_tokenized(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let ds = prolong_mds::MdsDataset::open(dir).unwrap();
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i).unwrap();
            let ids = s.u32s("input_ids").unwrap().into_owned();
            assert_eq!(s.integer("length").unwrap(), ids.len() as i128);
            (s.str("domain").unwrap().to_string(), ids)
        })
        .collect()
}
