//! HELMET's own files (issue 16): `--helmet-data DIR` gives HELMET's prompt text
//! byte for byte; bad files are errors naming the file and line.

use super::*;

/// `--tokenizer TOK --helmet-data DATA --lengths 4K --tasks TASKS --samples SAMPLES`.
fn helmet_args<'a>(
    tok: &'a Path,
    data: &'a Path,
    tasks: &'a str,
    samples: &'a str,
) -> Vec<&'a str> {
    vec![
        "--tokenizer",
        s(tok),
        "--helmet-data",
        s(data),
        "--lengths",
        "4K",
        "--tasks",
        tasks,
        "--samples",
        samples,
    ]
}

/// One JSONL line of HELMET's json_kv files.
fn kv_line(context: &str, key: &str, answer: &str, demos: &[(&str, &str)]) -> String {
    serde_json::json!({"context": context, "question": key, "answer": answer,
        "demos": demos.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(), "num_kvs": 3})
    .to_string()
}

/// One JSONL line of HELMET's RULER files.
fn ruler_line(context: &str, query: &str, noun: &str, outputs: &[&str]) -> String {
    serde_json::json!({"index": 0, "context": context, "query": query, "type_needle_v": noun,
        "outputs": outputs, "length": 4000})
    .to_string()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn helmet_data_gives_helmets_prompt_text_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = inputs(dir.path());
    let data = dir.path().join("data");
    let kv_context =
        "JSON data:\n{\n    \"k1\": \"v1\",\n    \"k2\": \"v2\",\n    \"k3\": \"v3\"\n}";
    write_lines(
        &data.join("json_kv/test_k50_dep6.jsonl"),
        &[
            kv_line(
                kv_context,
                "k2",
                "v2",
                &[("k1", "v1"), ("k3", "v3"), ("k9", "v9")],
            ),
            kv_line(kv_context, "k3", "v3", &[]),
            kv_line(kv_context, "k1", "v1", &[("k2", "v2")]),
        ],
    );
    let mk_context = "One of the special magic numbers for a-b is: 1234567.\nOne of the special magic numbers for c-d is: 7654321.";
    write_lines(
        &data.join("ruler/niah_multikey_2/validation_4096.jsonl"),
        &[ruler_line(mk_context, "c-d", "number", &["7654321"])],
    );
    // Long enough to be truncated at 4096 − 50 with the byte tokenizer.
    let mv_context = format!(
        "One of the special magic numbers for e-f is: 1111111. {}One of the special magic numbers for e-f is: 2222222.",
        "Grass is green. ".repeat(300)
    );
    write_lines(
        &data.join("ruler/niah_multivalue/validation_4096.jsonl"),
        &[ruler_line(
            &mv_context,
            "e-f",
            "numbers",
            &["1111111", "2222222"],
        )],
    );
    let run = |mv: &str, tasks: &str, samples: &str| {
        let file = dir.path().join(format!("{mv}.jsonl"));
        let mut args = helmet_args(&tok, &data, tasks, samples);
        args.extend([
            "--mv-template",
            mv,
            "--save-instances",
            s(&file),
            "--instances-only",
        ]);
        let out = recall(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (read_jsonl(&file).unwrap(), err)
    };

    // HELMET's pick of --samples items: datasets' shuffle with seed 42 (numpy's
    // default_rng(42).permutation(3) is [2, 1, 0]), then the first ones.
    let (picked, _) = run("head", "json_kv", "2");
    let (insts, _) = run("head", "json_kv,niah_multikey_2", "3");
    assert_eq!(insts.len(), 4, "three json_kv items, one mk_2");
    assert_eq!(picked[..], insts[..2]);
    let kv_tail =
        "\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n";
    assert_eq!(
        insts[0].input,
        format!(
            "{kv_context}{kv_tail}Key: k2\nCorresponding value: v2\n\nKey: k1\nCorresponding value:"
        )
    );
    // No demos: the blank line after them is still there (HELMET's shots = 2).
    assert_eq!(
        insts[1].input,
        format!("{kv_context}{kv_tail}\n\nKey: k3\nCorresponding value:")
    );
    // Three demos in the file: HELMET shows two.
    assert_eq!(
        insts[2].input,
        format!(
            "{kv_context}{kv_tail}Key: k1\nCorresponding value: v1\n\nKey: k3\nCorresponding value: v3\n\nKey: k2\nCorresponding value:"
        )
    );
    assert_eq!(
        (insts[2].answers.clone(), insts[2].haystack_units),
        (vec!["v2".to_owned()], 3)
    );
    assert_eq!(
        insts[3].input,
        format!(
            "A special magic number is hidden within the following text. Make sure to memorize it. I will quiz you about the number afterwards.\n{mk_context}\nWhat is the special magic number for c-d mentioned in the provided text?\nThe special magic number for c-d mentioned in the provided text is"
        )
    );
    // The byte tokenizer's post-processor adds nothing: no BOS is counted.
    let byte_tok = Tokenizer::from_bytes(byte_tokenizer_json().as_bytes()).unwrap();
    for inst in &insts {
        assert_eq!(
            inst.prompt_tokens,
            byte_tok.encode(&inst.input).unwrap().len()
        );
        assert_eq!((inst.length, inst.truncated_tokens), (4096, 0));
    }

    // niah_multivalue: HEAD's plural template or the paper's singular one, the end of
    // the context cut as HELMET cuts it (to exactly L − 50 tokens here: the byte
    // tokenizer's tokens never straddle the cut).
    let head = |ctx: &str| {
        format!(
            "Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n{ctx}\nWhat are all the special magic numbers for e-f mentioned in the provided text?\nThe special magic numbers for e-f mentioned in the provided text are"
        )
    };
    let (insts, err) = run("head", "niah_multivalue", "5");
    assert!(err.contains("1 truncated as HELMET truncates"), "{err}");
    let inst = &insts[0];
    let untruncated = byte_tok.encode(&head(&mv_context)).unwrap().len();
    assert_eq!(inst.truncated_tokens, untruncated - (4096 - 50));
    assert_eq!(inst.prompt_tokens, 4096 - 50);
    let kept = inst
        .input
        .strip_prefix(&head("")[..head("").find('\n').unwrap() + 1])
        .unwrap();
    let kept = &kept[..kept.find("\nWhat are all").unwrap()];
    assert!(mv_context.starts_with(kept) && kept.len() < mv_context.len());
    assert_eq!(inst.input, head(kept));
    assert_eq!(inst.answers, ["1111111", "2222222"]);
    // Run through a model: the prompt is the tokenizer's own ids (no BOS here), and
    // recall.json says how the instances were made.
    let model_dir = tiny_model(dir.path(), 302);
    let out_dir = dir.path().join("out");
    let mut args = vec!["--model", s(&model_dir)];
    args.extend(helmet_args(&tok, &data, "json_kv,niah_multikey_2", "1"));
    args.extend(["--out", s(&out_dir)]);
    recall_ok(&args);
    let report: RecallReport =
        serde_json::from_slice(&std::fs::read(out_dir.join("recall.json")).unwrap()).unwrap();
    assert_eq!(report.protocol, format!("helmet-data {}", data.display()));
    assert_eq!(report.mv_template, "head");
    let model = Llama::load(&model_dir, DType::F32, &Device::Cpu).unwrap();
    let (insts, _) = run("head", "json_kv,niah_multikey_2", "1");
    assert_eq!(report.instances.len(), 2);
    for (inst, got) in insts.iter().zip(&report.instances) {
        let prompt = byte_tok.encode(&inst.input).unwrap();
        assert_eq!(got.prompt_tokens, prompt.len());
        let ids = model
            .generate_greedy(&prompt, inst.max_new_tokens, &[EOS])
            .unwrap();
        assert_eq!(got.prediction, byte_tok.decode(&ids).unwrap());
        assert_eq!(got.score, score(inst.task, &got.prediction, &inst.answers));
    }

    // A tokenizer_config.json beside the tokenizer of a Llama class puts BOS first,
    // as HF's LlamaTokenizerFast does.
    let llama_dir = dir.path().join("llama");
    std::fs::create_dir_all(&llama_dir).unwrap();
    std::fs::copy(&tok, llama_dir.join("tokenizer.json")).unwrap();
    std::fs::write(
        llama_dir.join("tokenizer_config.json"),
        r#"{"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<|begin_of_text|>"}"#,
    )
    .unwrap();
    let file = dir.path().join("llama.jsonl");
    recall_ok(&[
        "--tokenizer",
        s(&llama_dir.join("tokenizer.json")),
        "--helmet-data",
        s(&data),
        "--lengths",
        "4K",
        "--tasks",
        "niah_multikey_2",
        "--save-instances",
        s(&file),
        "--instances-only",
    ]);
    let with_bos = &read_jsonl(&file).unwrap()[0];
    assert_eq!(
        with_bos.prompt_tokens,
        1 + byte_tok.encode(&with_bos.input).unwrap().len()
    );

    let (insts, _) = run("paper", "niah_multivalue", "5");
    assert!(
        insts[0].input.starts_with("A special magic numbers is hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\nOne of")
            && insts[0].input.ends_with("\nWhat is the special magic numbers for e-f mentioned in the provided text?\nThe special magic numbers for e-f mentioned in the provided text is"),
        "{}",
        insts[0].input
    );
}

#[test]
fn helmet_data_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = inputs(dir.path());
    let data = dir.path().join("data");
    let file = data.join("ruler/niah_multikey_3/validation_4096.jsonl");
    let good = ruler_line("ctx", "q", "uuid", &["x"]);
    let fail = |lengths: &str| -> String {
        recall_err(&[
            "--tokenizer",
            s(&tok),
            "--helmet-data",
            s(&data),
            "--lengths",
            lengths,
            "--tasks",
            "niah_multikey_3,json_kv",
            "--save-instances",
            s(&dir.path().join("i.jsonl")),
            "--instances-only",
        ])
    };
    // The HELMET-only flags need the HELMET protocol, and its RULER tasks a sizing
    // tokenizer.
    for (args, want) in [
        (
            &["--protocol", "helmet", "--tasks", "niah_multikey_2"][..],
            "sizes the RULER tasks in --sizing-tokenizer",
        ),
        (
            &["--mv-template", "paper"][..],
            "--mv-template paper is for",
        ),
        (&["--key-words", "w"][..], "are for --protocol helmet"),
        (&["--protocol", "ruler"][..], "not one of: fill, helmet"),
    ] {
        let mut all = vec![
            "--tokenizer",
            s(&tok),
            "--lengths",
            "4K",
            "--save-instances",
            "i.jsonl",
            "--instances-only",
        ];
        all.extend_from_slice(args);
        let out = recall(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
    let err = fail("4K");
    assert!(
        err.contains("validation_4096.jsonl") && err.contains("No such file"),
        "{err}"
    );
    write_lines(
        &file,
        &[good.clone(), r#"{"context": "c", "outputs": ["x"]}"#.into()],
    );
    let err = fail("4K");
    assert!(
        err.contains("validation_4096.jsonl:2: no field \"query\""),
        "{err}"
    );
    write_lines(&file, &[good.clone(), "{not json".into()]);
    assert!(fail("4K").contains("validation_4096.jsonl:2: not JSON"));
    write_lines(&file, std::slice::from_ref(&good));
    let err = fail("4K");
    assert!(err.contains("test_k50_dep6.jsonl"), "{err}");
    write_lines(
        &data.join("ruler/niah_multikey_3/validation_2048.jsonl"),
        &[good],
    );
    let err = fail("2K");
    assert!(err.contains("no json_kv file for length 2048"), "{err}");
}
