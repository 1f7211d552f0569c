//! Packed data and recipes for training runs: used by the `train_*` tests (through
//! `train_util`) and included by `examples/dist_bench.rs` with `#[path]`, so that
//! both write the same data and recipe text (nothing here needs the test harness).
#![allow(dead_code)]

use std::path::Path;

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

/// A recipe `name` for a random model (`model`: the keys of `[model.random]` after its
/// seed) on one stream `data`: `steps` steps of `tokens_per_step` tokens in
/// `seq_len`-token sequences, a checkpoint in `out` every `every` steps.
#[allow(clippy::too_many_arguments)]
pub fn recipe_text(
    name: &str,
    model: &str,
    data: &Path,
    out: &Path,
    seq_len: usize,
    tokens_per_step: usize,
    steps: u64,
    every: u64,
    peak_lr: f64,
) -> String {
    format!(
        r#"name = "{name}"
[model]
[model.random]
seed = 7
{model}

[data]
streams = ["{data}"]
seq_len = {seq_len}

[train]
steps = {steps}
tokens_per_step = {tokens_per_step}
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
    )
}
