//! `prolong-eval recall` end to end: instances only, a tiny random checkpoint with the
//! byte tokenizer (generations re-run here and compared), and its clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recall_common::{BOS, EOS, SMALL_PROSE, byte_tokenizer_json};
use candle_core::{DType, Device};
use prolong_eval::recall::instance::read_jsonl;
use prolong_eval::recall::{RecallReport, Table, Task, score};
use prolong_tokenizer::Tokenizer;
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig};

mod helmet_data;
mod run;

/// tokenizer.json and prose.txt in `dir`.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let tok = dir.join("tokenizer.json");
    std::fs::write(&tok, byte_tokenizer_json()).unwrap();
    let prose = dir.join("prose.txt");
    std::fs::write(&prose, SMALL_PROSE).unwrap();
    (tok, prose)
}

/// A 2-layer random Llama over the byte tokenizer's 302 ids, saved in `dir/model`.
fn tiny_model(dir: &Path, vocab_size: usize) -> PathBuf {
    let config = LlamaConfig::from_json(&format!(
        r#"{{"vocab_size": {vocab_size}, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rope_theta": 10000.0, "bos_token_id": {BOS}, "eos_token_id": [{EOS}],
            "model_type": "llama"}}"#
    ))
    .unwrap();
    let model = random_llama(&config, 7, 0.5, DType::F32, &Device::Cpu).unwrap();
    let out = dir.join("model");
    model.save(&out).unwrap();
    out
}

fn recall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prolong-eval"))
        .arg("recall")
        .args(args)
        .output()
        .unwrap()
}

/// `recall` with `args`, which must succeed (else the test fails with its stderr).
fn recall_ok(args: &[&str]) -> std::process::Output {
    let out = recall(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `recall` with `args`, which must fail with an error, not a panic: its stderr.
fn recall_err(args: &[&str]) -> String {
    let out = recall(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
