//! Helpers shared by the `train_*` tests (no tests of its own).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub use crate::train_data::{random_samples, recipe_text, write_packed};

/// A recipe for a random tiny model on `data` (one stream).
#[allow(clippy::too_many_arguments)]
pub fn recipe(
    data: &Path,
    out: &Path,
    seq_len: usize,
    micro: usize,
    steps: u64,
    every: u64,
    vocab: usize,
    peak_lr: f64,
) -> String {
    let model =
        format!("layers = 2\nhidden = 32\nheads = 4\nkv_heads = 2\nffn = 48\nvocab = {vocab}");
    recipe_text(
        "test",
        &model,
        data,
        out,
        seq_len,
        seq_len * micro,
        steps,
        every,
        peak_lr,
    )
}

/// A temporary folder holding the packed dataset `samples` in `data/`: `(folder, data,
/// out)`, where `out/` (not made here) is the output folder of a run over it.
pub fn temp_packed(samples: &[(Vec<u32>, Vec<u32>)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_packed(&data, samples);
    let out = tmp.path().join("out");
    (tmp, data, out)
}

pub fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_prolong-train"))
}

/// `metrics.jsonl` of the run in `out`, each record up to its throughput (the one field
/// that differs run to run).
pub fn metrics_text(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| l.split(",\"tokens_per_s\"").next().unwrap().to_string())
        .collect()
}
