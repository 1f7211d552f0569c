//! `prolong-eval recall` end to end: instances only, a tiny random checkpoint with the
//! byte tokenizer (generations re-run here and compared), and its clear errors.

mod recall_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device};
use prolong_data::tokenize::Tokenizer;
use prolong_eval::recall::instance::read_jsonl;
use prolong_eval::recall::{RecallReport, Table, Task, score};
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig};
use recall_common::{BOS, EOS, SMALL_PROSE, byte_tokenizer_json};

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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn instances_only_writes_checked_instances_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, prose) = inputs(dir.path());
    // A folder that does not exist yet: the command makes it.
    let file = dir.path().join("new/inst.jsonl");
    let args = [
        "--tokenizer",
        s(&tok),
        "--haystack",
        s(&prose),
        "--lengths",
        "1K,2048",
        "--samples",
        "2",
        "--seed",
        "4",
        "--save-instances",
        s(&file),
        "--instances-only",
    ];
    let out = recall(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let insts = read_jsonl(&file).unwrap();
    assert_eq!(insts.len(), 4 * 2 * 2);
    assert_eq!(
        insts
            .iter()
            .map(|i| (i.task, i.length, i.sample))
            .take(5)
            .collect::<Vec<_>>(),
        [
            (Task::JsonKv, 1024, 0),
            (Task::JsonKv, 1024, 1),
            (Task::JsonKv, 2048, 0),
            (Task::JsonKv, 2048, 1),
            (Task::NiahMultikey2, 1024, 0)
        ]
    );
    // Same inputs and seed: the same bytes.
    let first = std::fs::read(&file).unwrap();
    assert!(recall(&args).status.success());
    assert_eq!(std::fs::read(&file).unwrap(), first);
}

#[test]
fn clear_errors_for_short_lengths_vocab_mismatch_and_missing_haystack() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, prose) = inputs(dir.path());
    let file = dir.path().join("inst.jsonl");
    let fail = |args: &[&str]| -> String {
        let out = recall(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let err = fail(&[
        "--tokenizer",
        s(&tok),
        "--lengths",
        "150",
        "--tasks",
        "niah_multikey_3",
        "--save-instances",
        s(&file),
        "--instances-only",
    ]);
    assert!(
        err.contains("niah_multikey_3 at length 150")
            && err.contains("shorter than the prompt skeleton"),
        "{err}"
    );
    assert!(!file.exists());

    let err = fail(&[
        "--tokenizer",
        s(&tok),
        "--lengths",
        "1024",
        "--save-instances",
        s(&file),
        "--instances-only",
    ]);
    assert!(err.contains("niah_multivalue needs --haystack"), "{err}");

    let model = tiny_model(dir.path(), 256);
    let out_dir = dir.path().join("out");
    let err = fail(&[
        "--model",
        s(&model),
        "--tokenizer",
        s(&tok),
        "--haystack",
        s(&prose),
        "--lengths",
        "1024",
        "--out",
        s(&out_dir),
    ]);
    assert!(
        err.contains("vocab_size 256 does not cover the tokenizer's 302"),
        "{err}"
    );
    assert!(!out_dir.exists());

    // Issue 11 D8: a length past the documented maximum is refused while parsing,
    // and one past the model's trained context before any instance is made.
    let err = fail(&[
        "--tokenizer",
        s(&tok),
        "--lengths",
        "1000000000",
        "--tasks",
        "json_kv",
        "--save-instances",
        s(&file),
        "--instances-only",
    ]);
    assert!(
        err.contains("\"1000000000\" is longer than") && err.contains("1048576"),
        "{err}"
    );
    let model = tiny_model(dir.path(), 302);
    let config_path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["max_position_embeddings"] = 2048.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = fail(&[
        "--model",
        s(&model),
        "--tokenizer",
        s(&tok),
        "--lengths",
        "1K,4K",
        "--tasks",
        "json_kv",
        "--out",
        s(&out_dir),
    ]);
    assert!(
        err.contains("--lengths 4096 is longer than the model's trained context")
            && err.contains("max_position_embeddings 2048"),
        "{err}"
    );
    assert!(!out_dir.exists());
}

#[test]
fn a_tiny_model_run_writes_the_table_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let (tok_path, prose) = inputs(dir.path());
    let model_dir = tiny_model(dir.path(), 302);
    // generation_config.json's stop ids win over config.json's: byte 0x19, which this
    // random model produces often.
    let stop = [EOS, 0x19];
    std::fs::write(
        model_dir.join("generation_config.json"),
        format!(r#"{{"bos_token_id": {BOS}, "eos_token_id": [{EOS}, 25]}}"#),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let file = dir.path().join("inst.jsonl");
    let args = [
        "--model",
        s(&model_dir),
        "--tokenizer",
        s(&tok_path),
        "--haystack",
        s(&prose),
        // A repeated length or task counts once.
        "--lengths",
        "1024,1K",
        "--tasks",
        "niah_multivalue,json_kv,niah_multivalue",
        "--samples",
        "2",
        "--out",
        s(&out_dir),
        "--save-instances",
        s(&file),
    ];
    let out = recall(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["task", "1K"]);
    assert_eq!(
        rows[1..].iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["niah_multivalue", "json_kv", "Recall"]
    );

    let report: RecallReport =
        serde_json::from_slice(&std::fs::read(out_dir.join("recall.json")).unwrap()).unwrap();
    let insts = read_jsonl(&file).unwrap();
    assert_eq!(report.instances.len(), 4);
    // Each prediction is what the model generates greedily after BOS, decoded, and its
    // score is the task's scorer on it.
    let tok = Tokenizer::from_bytes(byte_tokenizer_json().as_bytes()).unwrap();
    let model = Llama::load(&model_dir, DType::F32, &Device::Cpu).unwrap();
    for (inst, got) in insts.iter().zip(&report.instances) {
        assert_eq!(
            (got.task, got.length, got.sample),
            (inst.task, inst.length, inst.sample)
        );
        assert_eq!(got.answers, inst.answers);
        let mut prompt = vec![BOS];
        prompt.extend(tok.encode(&inst.input).unwrap());
        assert_eq!(prompt.len(), inst.prompt_tokens);
        let ids = model
            .generate_greedy(&prompt, inst.max_new_tokens, &stop)
            .unwrap();
        assert_eq!(got.generated_tokens, ids.len());
        assert_eq!(got.prediction, tok.decode(&ids).unwrap());
        assert_eq!(got.score, score(inst.task, &got.prediction, &inst.answers));
    }
    assert!(
        insts
            .iter()
            .zip(&report.instances)
            .any(|(i, got)| got.generated_tokens < i.max_new_tokens),
        "no generation stopped at the generation config's stop id"
    );
    let table = Table::new(
        &[Task::NiahMultivalue, Task::JsonKv],
        &[1024],
        &report.instances,
    );
    assert_eq!(report.table, table);
    let svg = std::fs::read_to_string(out_dir.join("recall.svg")).unwrap();
    assert_eq!(svg, table.svg(&format!("Recall: {}", model_dir.display())));
    assert_eq!(svg.matches("<rect ").count(), 1 + 3);

    // A rerun writes the same bytes.
    let json = std::fs::read(out_dir.join("recall.json")).unwrap();
    assert!(recall(&args).status.success());
    assert_eq!(std::fs::read(out_dir.join("recall.json")).unwrap(), json);
}
