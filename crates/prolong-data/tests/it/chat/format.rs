//! The chat format: ids and mask, Llama-3 parity, bad conversations, the BOS
//! from tokenizer_config.

use super::*;

const EOT: u32 = 260;

const END_HEADER: u32 = 259;

const START_HEADER: u32 = 258;

#[test]
fn ids_and_mask_follow_the_format_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = chat_tokenizer(tmp.path());
    let input = tmp.path().join("chat.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Hi?\n"}, {"role": "assistant", "content": "Yes.  "}]}"#,
            "\n",
            r#"{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}, {"from": "chatgpt", "value": "d"}]}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let outcome = run(&tok, &[input], &out, TaskSpec::new(0, 1).unwrap(), "chat").unwrap();
    let got = read_chat(&out);

    // <|begin_of_text|> then <|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>.
    let turn = |role: &str, content: &str, trained: u8| {
        let mut ids = vec![START_HEADER];
        ids.extend(bytes(role));
        ids.push(END_HEADER);
        ids.extend(bytes("\n\n"));
        let mut mask = vec![0; ids.len()];
        ids.extend(bytes(content));
        ids.push(EOT);
        mask.resize(ids.len(), trained);
        (ids, mask)
    };
    let conversation = |turns: &[(&str, &str, u8)]| {
        let (mut ids, mut mask) = (vec![BOS], vec![0]);
        for &(role, content, trained) in turns {
            let (i, m) = turn(role, content, trained);
            ids.extend(i);
            mask.extend(m);
        }
        (ids, mask)
    };
    let want = vec![
        conversation(&[
            ("system", "Be brief.", 0),
            ("user", "Hi?", 0),
            ("assistant", "Yes.", 1),
        ]),
        conversation(&[
            ("user", "a", 0),
            ("assistant", "b", 1),
            ("user", "c", 0),
            ("assistant", "d", 1),
        ]),
    ];
    assert_eq!(got, want);
    let stats = outcome.stats;
    assert_eq!((stats.conversations_in, stats.conversations_out), (2, 2));
    assert_eq!(stats.messages, 7);
    assert_eq!(stats.trained_tokens, 4 + 1 + 1 + 1 + 1 + 1);
    let idx = prolong_mds::Index::load(&out).unwrap();
    assert_eq!(
        idx.shards[0].column_names,
        ["domain", "input_ids", "length", "mask"]
    );
}

#[test]
fn llama3_encoding_matches_the_tokenizers_crate_on_the_rendered_template() {
    let Some(path) = common::fixture("tokenizer.json", "llama3_encoding_matches") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let conversations: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("user", "Hello there!"),
            ("assistant", "Hi. How can I help?"),
        ],
        vec![
            ("system", "You are terse.\n"),
            ("user", "\n\n  What is 12345 + 678?"),
            ("assistant", "13023"),
            ("user", "And in words — précisément?"),
            ("assistant", "  Thirteen thousand and twenty-three.\n\n"),
        ],
        vec![
            ("user", "code:\n```rust\nfn main() {}\n```"),
            ("assistant", "'s fine; \"quoted\" ...\n\tindented"),
        ],
        vec![("user", "数字は？"), ("assistant", "🙂 12 34")],
    ];
    let jsonl: String = conversations
        .iter()
        .map(|c| {
            let messages: Vec<_> = c
                .iter()
                .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
                .collect();
            serde_json::json!({ "messages": messages }).to_string() + "\n"
        })
        .collect();
    let input = tmp.path().join("c.jsonl");
    std::fs::write(&input, jsonl).unwrap();
    let ours = Tokenizer::from_file(&path).unwrap();
    let out = tmp.path().join("out");
    run(&ours, &[input], &out, TaskSpec::new(0, 1).unwrap(), "chat").unwrap();
    let got = read_chat(&out);

    let reference = tokenizers::Tokenizer::from_file(&path).unwrap();
    for (c, (ids, mask)) in conversations.iter().zip(&got) {
        let mut rendered = String::from("<|begin_of_text|>");
        for (role, content) in c {
            rendered += &format!(
                "<|start_header_id|>{role}<|end_header_id|>\n\n{}<|eot_id|>",
                content.trim()
            );
        }
        let want = reference.encode(rendered.as_str(), false).unwrap();
        assert_eq!(ids, want.get_ids(), "{rendered:?}");
        // The runs of mask 1 are the assistant's contents with their <|eot_id|>.
        let mut runs = Vec::new();
        let mut start = None;
        for (i, &m) in mask.iter().chain(&[0]).enumerate() {
            match (m, start) {
                (1, None) => start = Some(i),
                (0, Some(s)) => {
                    runs.push(reference.decode(&ids[s..i], false).unwrap());
                    start = None;
                }
                _ => assert!(m <= 1),
            }
        }
        let assistant: Vec<String> = c
            .iter()
            .filter(|(role, _)| *role == "assistant")
            .map(|(_, content)| format!("{}<|eot_id|>", content.trim()))
            .collect();
        assert_eq!(runs, assistant);
    }
}

#[test]
fn bad_conversations_are_counted_by_reason_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = chat_tokenizer(tmp.path());
    let good = r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#;
    let lines = [
        good,                                                     // 1
        r#"{"messages": [{"role": "user", "content": "q"}"#,      // 2 malformed
        r#"{"messages": []}"#,                                    // 3 empty
        "",                                                       // 4 blank: not a record
        r#"{"conversations": [{"from": "bing", "value": "x"}]}"#, // 5 unknown role
        r#"{"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"}]}"#, // 6
        r#"{"messages": [{"role": "user", "content": "q"}]}"#, // 7 no assistant
        r#"{"text": "a document"}"#,                           // 8 no messages
        good,                                                  // 9
    ];
    let input = tmp.path().join("mixed.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = tmp.path().join("out");
    let stats = run(
        &tok,
        std::slice::from_ref(&input),
        &out,
        TaskSpec::new(0, 1).unwrap(),
        "c",
    )
    .unwrap()
    .stats;
    assert_eq!((stats.conversations_in, stats.conversations_out), (8, 2));
    assert_eq!(
        common::skip_reasons(&stats.skipped),
        [
            ("empty_content", 1),
            ("empty_conversation", 1),
            ("malformed_json", 1),
            ("no_assistant_turn", 1),
            ("no_messages", 1),
            ("unknown_role", 1),
        ]
    );
    let name = input.display().to_string();
    for (line, reason) in [
        (2, "malformed_json"),
        (3, "empty_conversation"),
        (5, "unknown_role"),
        (6, "empty_content"),
        (7, "no_assistant_turn"),
    ] {
        let prefix = format!("{name}:{line}: {reason}");
        assert!(
            stats
                .skipped
                .examples
                .iter()
                .any(|e| e.starts_with(&prefix)),
            "{prefix} in {:?}",
            stats.skipped.examples
        );
    }
    assert_eq!(read_chat(&out).len(), 2);

    // A file with no conversation at all is one error naming it.
    let docs = tmp.path().join("docs.jsonl");
    std::fs::write(&docs, "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
    let err = run(
        &tok,
        &[docs],
        &tmp.path().join("out2"),
        TaskSpec::new(0, 1).unwrap(),
        "c",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("docs.jsonl: none of its 2 lines"), "{err}");
    assert!(err.contains("first line's keys: text"), "{err}");
}

#[test]
fn tokenizer_config_gives_the_bos_and_must_be_llama3s_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let llama3 = "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
    let config = tmp.path().join("tokenizer_config.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "bos_token": {"content": "<|end_of_text|>", "__type": "AddedToken"},
            "eos_token": "<|eot_id|>",
            "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": llama3}],
        })
        .to_string(),
    )
    .unwrap();
    let tokens = ChatTokens::from_tokenizer_config(&config).unwrap();
    assert_eq!(
        tokens,
        ChatTokens {
            bos: "<|end_of_text|>".into(),
            ..ChatTokens::llama3()
        }
    );
    let tok = chat_tokenizer(tmp.path());
    let encoder = ChatEncoder::new(&tok, &tokens).unwrap();
    assert_eq!(encoder.special_tokens().bos.id, EOS);

    let chatml = tmp.path().join("chatml.json");
    std::fs::write(
        &chatml,
        r#"{"bos_token": null, "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"}"#,
    )
    .unwrap();
    let err = ChatTokens::from_tokenizer_config(&chatml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chatml.json: no bos_token"), "{err}");
    std::fs::write(
        &chatml,
        r#"{"bos_token": "<s>", "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"}"#,
    )
    .unwrap();
    let err = ChatTokens::from_tokenizer_config(&chatml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the Llama-3 chat layout"), "{err}");

    // Through the binary: --json prints the stats; a tokenizer without the
    // tokens is one clear error.
    let input = tmp.path().join("c.jsonl");
    std::fs::write(
        &input,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
    )
    .unwrap();
    let chat = |tokenizer: &Path, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("chat")
            .arg(&input)
            .arg("--out")
            .arg(tmp.path().join(out))
            .arg("--tokenizer")
            .arg(tokenizer)
            .arg("--json")
            .output()
            .unwrap()
    };
    let out = common::succeeded(chat(&tmp.path().join("tokenizer.json"), "o1"));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["conversations_out"], 1);
    assert_eq!(stats["trained_tokens"], 2, "\"a\" and <|eot_id|>");
    let plain_dir = tmp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let out = chat(&common::write_byte_tokenizer(&plain_dir), "o2");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_error_line(&stderr, &["has no added token \"<|begin_of_text|>\""]);
}
