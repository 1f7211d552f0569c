//! Helpers shared by the `train_*` tests (included with `#[path]`; no tests of its own).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use prolong_mds::{Array, MdsWriter, Value, WriterOptions};
use prolong_rng::SplitMix64;

/// Writes a packed MDS dataset: one sample per `(input_ids, indices)`.
pub fn write_packed(dir: &Path, samples: &[(Vec<u32>, Vec<u32>)]) {
    let columns = [
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ];
    let mut w = MdsWriter::create(dir, &columns, WriterOptions::default()).unwrap();
    for (ids, idx) in samples {
        w.write(&[
            ("domain", Value::Str("test".into())),
            (
                "indices",
                Value::Array(Array::from_u32(idx).with_shape(vec![idx.len() / 2, 2])),
            ),
            ("input_ids", Value::Array(Array::from_u32(ids))),
            ("length", Value::Int(ids.len() as i64)),
        ])
        .unwrap();
    }
    w.finish().unwrap();
}

/// `n` random sequences of `len` tokens below `vocab`, each cut into a few documents.
pub fn random_samples(n: usize, len: usize, vocab: u64, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let ids: Vec<u32> = (0..len).map(|_| rng.below(vocab) as u32).collect();
            let cut = 1 + rng.below(len as u64 - 2) as u32;
            (ids, vec![0, cut, cut, len as u32])
        })
        .collect()
}

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
    format!(
        r#"name = "test"
[model]
[model.random]
seed = 7
layers = 2
hidden = 32
heads = 4
kv_heads = 2
ffn = 48
vocab = {vocab}

[data]
streams = ["{data}"]
seq_len = {seq_len}

[train]
steps = {steps}
tokens_per_step = {tps}
peak_lr = {peak_lr}
warmup = 0.1
seed = 3
threads = 1

[checkpoint]
out = "{out}"
every = {every}
"#,
        data = data.display(),
        out = out.display(),
        tps = seq_len * micro,
    )
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
