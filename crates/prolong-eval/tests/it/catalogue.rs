//! The catalogue of malformed inputs for `prolong-eval`: recall lengths,
//! missing checkpoints, data and tokenizers. Each row builds one bad input
//! and names the exact outcome: one error line naming the file (see
//! `common/catalogue.rs` in prolong-data's tests).

use crate::recall_common;

use std::path::Path;

use crate::recall_common::catalogue::{Case, Outcome, run};
use candle_core::{DType, Device};
use prolong_train::LlamaConfig;
use prolong_train::train::init::random_llama;

/// The byte tokenizer as `dir/tokenizer.json`.
fn tokenizer(dir: &Path) {
    std::fs::write(
        dir.join("tokenizer.json"),
        recall_common::byte_tokenizer_json(),
    )
    .unwrap();
}

/// A 1-layer random Llama over the byte tokenizer's ids in `dir/model`,
/// trained (its config.json says) to 512 positions.
fn model(dir: &Path) {
    let config = LlamaConfig::from_json(
        r#"{"vocab_size": 302, "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "rope_theta": 10000.0, "max_position_embeddings": 512, "model_type": "llama"}"#,
    )
    .unwrap();
    let model = random_llama(&config, 7, 0.5, DType::F32, &Device::Cpu).unwrap();
    model.save(dir.join("model")).unwrap();
    tokenizer(dir);
}

const PPL: &[&str] = &["ppl", "--model", "{dir}/model", "--data", "{dir}/data"];
const EXPORT: &[&str] = &[
    "export",
    "--model",
    "{dir}/model",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--out",
    "{dir}/hf",
];

const fn recall_lengths(lengths: &'static str) -> [&'static str; 10] {
    [
        "recall",
        "--tokenizer",
        "{dir}/tokenizer.json",
        "--lengths",
        lengths,
        "--tasks",
        "json_kv",
        "--save-instances",
        "{dir}/inst.jsonl",
        "--instances-only",
    ]
}

const CASES: &[Case] = &[
    Case {
        name: "recall_length_of_a_billion",
        build: tokenizer,
        args: &recall_lengths("1000000000"),
        outcome: Outcome::Usage(
            "invalid value '1000000000' for '--lengths <LENGTHS>': \"1000000000\" is longer than the longest length prolong-eval recall runs, 1048576 (1024K)",
        ),
    },
    Case {
        name: "recall_length_not_a_number",
        build: tokenizer,
        args: &recall_lengths("1G"),
        outcome: Outcome::Usage(
            "invalid value '1G' for '--lengths <LENGTHS>': \"1G\" is not a length (e.g. 4096 or 4K)",
        ),
    },
    Case {
        name: "recall_length_past_the_models_context",
        build: model,
        args: &[
            "recall",
            "--model",
            "{dir}/model",
            "--tokenizer",
            "{dir}/tokenizer.json",
            "--lengths",
            "1024",
            "--tasks",
            "json_kv",
            "--out",
            "{dir}/out",
        ],
        outcome: Outcome::Error(
            "--lengths 1024 is longer than the model's trained context ({dir}/model/config.json: max_position_embeddings 512)",
        ),
    },
    Case {
        name: "recall_tokenizer_missing",
        build: |_| {},
        args: &recall_lengths("1024"),
        outcome: Outcome::Error(
            "reading tokenizer {dir}/tokenizer.json: No such file or directory (os error 2)",
        ),
    },
    Case {
        name: "ppl_data_missing",
        build: model,
        args: PPL,
        outcome: Outcome::Error("{dir}/data/index.json: No such file or directory (os error 2)"),
    },
    Case {
        name: "ppl_model_missing",
        build: |_| {},
        args: PPL,
        outcome: Outcome::Error(
            "loading model {dir}/model: {dir}/model/config.json: No such file or directory (os error 2)",
        ),
    },
    Case {
        name: "ppl_model_config_not_json",
        build: |d| {
            model(d);
            std::fs::write(d.join("model/config.json"), "{\"vocab_size\": ").unwrap();
        },
        args: PPL,
        outcome: Outcome::Error(
            "loading model {dir}/model: {dir}/model/config.json: invalid JSON: EOF while parsing a value at line 1 column 15",
        ),
    },
    Case {
        name: "export_checkpoint_missing",
        build: tokenizer,
        args: EXPORT,
        outcome: Outcome::Error("{dir}/model/config.json: No such file or directory (os error 2)"),
    },
    Case {
        name: "export_weights_missing",
        build: |d| {
            model(d);
            std::fs::remove_file(d.join("model/model.safetensors")).unwrap();
        },
        args: EXPORT,
        outcome: Outcome::Error(
            "{dir}/model/model.safetensors: No such file or directory (os error 2)",
        ),
    },
];

#[test]
fn catalogue() {
    run(env!("CARGO_BIN_EXE_prolong-eval"), CASES);
}
