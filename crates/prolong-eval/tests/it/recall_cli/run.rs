//! The `recall` command: instances without a model, clear errors, a tiny model run.

use super::*;

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
    recall_ok(&args);
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
    // Instances alone: (lengths, task arguments, what stderr must hold). Issue 11 D8:
    // a length past the documented maximum is refused while parsing.
    let instances_only: [(&str, &[&str], &[&str]); 3] = [
        (
            "150",
            &["--tasks", "niah_multikey_3"],
            &[
                "niah_multikey_3 at length 150",
                "shorter than the prompt skeleton",
            ],
        ),
        ("1024", &[], &["niah_multivalue needs --haystack"]),
        (
            "1000000000",
            &["--tasks", "json_kv"],
            &["\"1000000000\" is longer than", "1048576"],
        ),
    ];
    for (lengths, tasks, wants) in instances_only {
        let mut args = vec!["--tokenizer", s(&tok), "--lengths", lengths];
        args.extend(tasks);
        args.extend(["--save-instances", s(&file), "--instances-only"]);
        let err = recall_err(&args);
        for want in wants {
            assert!(err.contains(want), "{err}");
        }
        assert!(!file.exists());
    }

    let model = tiny_model(dir.path(), 256);
    let out_dir = dir.path().join("out");
    let err = recall_err(&[
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

    // Issue 11 D8: a length past the model's trained context is refused before any
    // instance is made.
    let model = tiny_model(dir.path(), 302);
    let config_path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["max_position_embeddings"] = 2048.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = recall_err(&[
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
