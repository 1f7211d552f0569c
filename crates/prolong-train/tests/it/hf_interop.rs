//! Checkpoint interop with HF transformers (`LlamaForCausalLM`, float32), both ways:
//!
//! * ours → HF: random tiny GQA Llamas from a seed (untied and tied) saved by
//!   `Llama::save` load in transformers, whose logits equal ours;
//! * HF → ours: random `LlamaForCausalLM`s written by `save_pretrained` (a single
//!   `model.safetensors`, a sharded one via `max_shard_size`, and a tied one) load in
//!   `Llama::load`, whose logits equal transformers'.
//!
//! Each model runs a single-document sequence and a packed one (documents, a gap token and
//! a one-token document); transformers runs each document alone with `position_ids`
//! counted over the packed sequence (fixtures/hf-llama/README.md). Logits must agree
//! within 1e-4 norm-relative error.
//!
//! Python side: scripts/hf_interop.py, one process for every job. Skipped (passing, one
//! line on stderr) when `python3 -c "import torch, transformers"` fails.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Rng, norm_rel_err, succeeded};
use candle_core::{DType, Device, Tensor};
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig, PackedSequence};

const TOL: f64 = 1e-4;
const T: usize = 48;

fn python_ok() -> bool {
    Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/hf_interop.py")
}

fn config_json(vocab: usize, theta: f64, tied: bool) -> serde_json::Value {
    serde_json::json!({
        "vocab_size": vocab, "hidden_size": 64, "intermediate_size": 176,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "rms_norm_eps": 1e-5, "rope_theta": theta,
        "tie_word_embeddings": tied, "hidden_act": "silu", "model_type": "llama",
        "max_position_embeddings": 4096, "architectures": ["LlamaForCausalLM"]
    })
}

/// Our random model, norm weights moved off 1 so that they matter.
fn our_model(cfg: &LlamaConfig, seed: u64) -> Llama {
    let mut m = random_llama(cfg, seed, 0.1, DType::F32, &Device::Cpu).unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    for (name, t) in m.params_mut().named_mut() {
        if name.ends_with("norm.weight") {
            *t = rng
                .tensor(t.dims(), 0.5)
                .affine(1.0, 1.0)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
        }
    }
    m
}

/// `(name, input_ids, indices)`: one document, and a packed sequence with a gap token
/// (23) and a one-token document (30).
fn batches(vocab: usize, seed: u64) -> Vec<Batch> {
    let mut rng = Rng::new(seed);
    vec![
        ("single", rng.tokens(T, vocab), vec![[0, T]]),
        (
            "packed",
            rng.tokens(T, vocab),
            vec![[0, 11], [11, 23], [24, 30], [30, 31], [31, T]],
        ),
    ]
}

fn write_batch(path: &Path, ids: &[u32], indices: &[[usize; 2]]) {
    let ids: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    let flat: Vec<i64> = indices.iter().flatten().map(|&x| x as i64).collect();
    let map = HashMap::from([
        (
            "input_ids".to_string(),
            Tensor::new(ids, &Device::Cpu).unwrap(),
        ),
        (
            "indices".to_string(),
            Tensor::from_vec(flat, (indices.len(), 2), &Device::Cpu).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&map, path).unwrap();
}

type Batch = (&'static str, Vec<u32>, Vec<[usize; 2]>);

struct Case {
    name: String,
    dir: PathBuf,
    vocab: usize,
    seed: u64,
}

#[test]
fn checkpoints_round_trip_through_transformers() {
    if !python_ok() {
        eprintln!("hf_interop: skipped (python3 cannot import torch and transformers)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();

    // ours → HF
    let mut cases = Vec::new();
    for (name, tied, vocab, theta, seed) in [
        ("ours-untied", false, 256, 10_000.0, 1u64),
        ("ours-tied", true, 200, 500_000.0, 2),
    ] {
        let cfg = LlamaConfig::from_json(&config_json(vocab, theta, tied).to_string()).unwrap();
        let dir = root.join(name);
        our_model(&cfg, seed).save(&dir).unwrap();
        cases.push(Case {
            name: name.into(),
            dir,
            vocab,
            seed,
        });
    }
    // HF → ours
    let mut make = Vec::new();
    for (name, tied, vocab, shard, seed) in [
        ("hf-single", false, 256, None, 3u64),
        ("hf-sharded", false, 320, Some("60KB"), 4),
        ("hf-tied", true, 256, None, 5),
    ] {
        let dir = root.join(name);
        let mut config = config_json(vocab, 10_000.0, tied);
        config["initializer_range"] = 0.1.into();
        make.push(serde_json::json!({
            "dir": dir, "seed": seed, "config": config, "max_shard_size": shard,
        }));
        cases.push(Case {
            name: name.into(),
            dir,
            vocab,
            seed,
        });
    }
    let mut logits = Vec::new();
    for c in &cases {
        for (b, ids, indices) in batches(c.vocab, c.seed) {
            let batch = root.join(format!("{}-{b}.batch.safetensors", c.name));
            write_batch(&batch, &ids, &indices);
            logits.push(serde_json::json!({
                "model": c.dir, "batch": batch,
                "out": root.join(format!("{}-{b}.hf.safetensors", c.name)),
            }));
        }
    }
    let jobs = root.join("jobs.json");
    let text = serde_json::json!({"make": make, "logits": logits}).to_string();
    std::fs::write(&jobs, text).unwrap();
    succeeded(
        Command::new("python3")
            .arg(script())
            .arg(&jobs)
            .output()
            .unwrap(),
    );

    let sharded = root.join("hf-sharded");
    assert!(
        sharded.join("model.safetensors.index.json").exists(),
        "max_shard_size gave a sharded checkpoint"
    );
    assert!(
        !root.join("hf-tied/model.safetensors").exists()
            || !candle_core::safetensors::load(
                root.join("hf-tied/model.safetensors"),
                &Device::Cpu
            )
            .unwrap()
            .contains_key("lm_head.weight"),
        "tied HF checkpoint has no lm_head.weight"
    );

    for c in &cases {
        let model = Llama::load(&c.dir, DType::F32, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        for (b, ids, indices) in batches(c.vocab, c.seed) {
            let seq = PackedSequence::new(ids, &indices, None).unwrap();
            let ours = model.logits(&seq).unwrap();
            let path = root.join(format!("{}-{b}.hf.safetensors", c.name));
            let hf = candle_core::safetensors::load(&path, &Device::Cpu).unwrap()["logits"].clone();
            assert_eq!(ours.dims(), [T, c.vocab], "{}-{b}", c.name);
            let err = norm_rel_err(&ours, &hf);
            let scale = common::norm(&hf) / ((T * c.vocab) as f64).sqrt();
            eprintln!(
                "{}-{b}: logits norm-relative error {err:.2e} (rms logit {scale:.3})",
                c.name
            );
            assert!(scale > 0.05, "{}-{b}: logits too small to compare", c.name);
            assert!(err < TOL, "{}-{b}: norm-relative error {err:e}", c.name);
        }
    }
}
