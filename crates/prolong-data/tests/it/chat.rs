//! The chat stage: conversations (UltraChat and ShareGPT layouts) to MDS with
//! a loss mask in the Llama-3 chat format, checked against the `tokenizers`
//! crate's encoding of the rendered template; skips by reason; sharded runs
//! and re-runs; pack keeps the mask and verify accepts it.

use crate::common;

use std::path::{Path, PathBuf};

use prolong_data::chat::stage::{ChatError, ChatOptions, ChatOutcome, chat_task};
use prolong_data::chat::template::{ChatEncoder, ChatTokens};
use prolong_data::pack::PackOptions;
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_mds::MdsDataset;

const BOS: u32 = 256;
const EOS: u32 = 257;
const START_HEADER: u32 = 258;
const END_HEADER: u32 = 259;
const EOT: u32 = 260;

fn chat_tokenizer(dir: &Path) -> Tokenizer {
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, common::chat_tokenizer_json()).unwrap();
    Tokenizer::from_file(&path).unwrap()
}

fn run(
    tokenizer: &Tokenizer,
    files: &[PathBuf],
    out: &Path,
    task: TaskSpec,
    domain: &str,
) -> Result<ChatOutcome, ChatError> {
    let encoder = ChatEncoder::new(tokenizer, &ChatTokens::llama3()).unwrap();
    let options = ChatOptions {
        domain: domain.into(),
        size_limit: prolong_mds::DEFAULT_SIZE_LIMIT,
        tokenizer_hash: String::new(),
    };
    chat_task(&encoder, files, out, task, &options, &mut |_| {})
}

/// (input_ids, mask) of every sample.
fn read_chat(dir: &Path) -> Vec<(Vec<u32>, Vec<u8>)> {
    let ds = MdsDataset::open(dir).unwrap();
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i).unwrap();
            let ids = s.u32s("input_ids").unwrap().into_owned();
            let mask = s.array("mask").unwrap().as_u8().unwrap().into_owned();
            assert_eq!(s.integer("length").unwrap(), ids.len() as i128);
            assert_eq!(mask.len(), ids.len());
            (ids, mask)
        })
        .collect()
}

/// The byte tokenizer's ids of a text (one id per byte).
fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

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
fn compressed_inputs_sharded_runs_and_reruns_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = chat_tokenizer(tmp.path());
    let mut files = Vec::new();
    for f in 0..3 {
        let jsonl: String = (0..5)
            .map(|i| {
                format!(
                    "{{\"messages\": [{{\"role\": \"user\", \"content\": \"file {f} question {i}\"}}, {{\"role\": \"assistant\", \"content\": \"answer {i}\"}}]}}\n"
                )
            })
            .collect();
        let path = match f {
            0 => {
                let p = tmp.path().join("in/a.jsonl");
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, &jsonl).unwrap();
                p
            }
            1 => {
                let p = tmp.path().join("in/b.jsonl.zst");
                std::fs::write(&p, zstd::encode_all(jsonl.as_bytes(), 3).unwrap()).unwrap();
                p
            }
            _ => {
                use std::io::Write;
                let p = tmp.path().join("in/c.jsonl.gz");
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(jsonl.as_bytes()).unwrap();
                std::fs::write(&p, gz.finish().unwrap()).unwrap();
                p
            }
        };
        files.push(path);
    }
    let files = prolong_data::tokenize::stage::input_files(&[tmp.path().join("in")]).unwrap();
    assert_eq!(files.len(), 3);

    let one = tmp.path().join("one");
    run(&tok, &files, &one, TaskSpec::new(0, 1).unwrap(), "c").unwrap();
    assert_eq!(read_chat(&one).len(), 15);

    let two = tmp.path().join("two");
    let first = run(&tok, &files, &two, TaskSpec::new(0, 2).unwrap(), "c").unwrap();
    assert_eq!(
        first.stats.files.len(),
        2,
        "task 0 of 2 takes files 0 and 2"
    );
    assert!(
        !two.join("index.json").exists(),
        "merged only when every task is done"
    );
    run(&tok, &files, &two, TaskSpec::new(1, 2).unwrap(), "c").unwrap();
    assert!(two.join("index.json").is_file());
    let mut sharded = read_chat(&two);
    let mut whole = read_chat(&one);
    sharded.sort();
    whole.sort();
    assert_eq!(sharded, whole);

    // A re-run skips; a task without its marker is redone byte for byte.
    let before = common::files(&two);
    assert!(
        run(&tok, &files, &two, TaskSpec::new(1, 2).unwrap(), "c")
            .unwrap()
            .skipped
    );
    std::fs::remove_file(two.join("proc1-2.done")).unwrap();
    assert!(
        !run(&tok, &files, &two, TaskSpec::new(1, 2).unwrap(), "c")
            .unwrap()
            .skipped
    );
    assert_eq!(common::files(&two), before);

    // A completed task asked for something else is an error, not stale output.
    let err = run(&tok, &files, &two, TaskSpec::new(1, 2).unwrap(), "other")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("was made with other settings (domain was \"c\", now \"other\")"),
        "{err}"
    );
}

#[test]
fn pack_keeps_the_mask_with_zero_on_its_eos_and_verify_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = chat_tokenizer(tmp.path());
    let jsonl: String = (0..40)
        .map(|i| {
            format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}, {{\"role\": \"assistant\", \"content\": \"{}\"}}]}}\n",
                "q".repeat(3 + i % 7),
                "a".repeat(1 + i % 5)
            )
        })
        .collect();
    let input = tmp.path().join("c.jsonl");
    std::fs::write(&input, jsonl).unwrap();
    let tokenized = tmp.path().join("tok");
    run(
        &tok,
        &[input],
        &tokenized,
        TaskSpec::new(0, 1).unwrap(),
        "chat",
    )
    .unwrap();
    prolong_mds::verify_with(&tokenized, &prolong_packed::check_sample).unwrap();

    let packed = tmp.path().join("packed");
    let options = PackOptions::new(64).special_tokens(Some(BOS), Some(EOS));
    prolong_data::pack::run_task(
        std::slice::from_ref(&tokenized),
        &packed,
        &options,
        TaskSpec::new(0, 1).unwrap(),
        &mut |_| {},
    )
    .unwrap();
    prolong_mds::verify_with(&packed, &prolong_packed::check_sample).unwrap();

    // Greedy packing with carry-over lays the conversations, each followed by
    // EOS with mask 0 (BOS is theirs already), end to end.
    let (mut stream_ids, mut stream_mask) = (Vec::new(), Vec::new());
    for (ids, mask) in read_chat(&tokenized) {
        stream_ids.extend(ids);
        stream_ids.push(EOS);
        stream_mask.extend(mask);
        stream_mask.push(0);
    }
    let (packed_ids, packed_mask): (Vec<Vec<u32>>, Vec<Vec<u8>>) =
        read_chat(&packed).into_iter().unzip();
    let (packed_ids, packed_mask) = (packed_ids.concat(), packed_mask.concat());
    assert!(packed_ids.len() >= 64 * 4);
    assert_eq!(packed_ids, stream_ids[..packed_ids.len()]);
    assert_eq!(packed_mask, stream_mask[..packed_mask.len()]);
    assert!(packed_mask.contains(&1));
    let bos_eos = packed_ids.iter().filter(|&&t| t == BOS || t == EOS).count();
    assert!(bos_eos > 8);
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
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("has no added token \"<|begin_of_text|>\""),
        "{stderr}"
    );
}

/// `prolong-data chat INPUT --tokenizer TOKENIZER --domain DOMAIN --out OUT`
/// over 60 conversations (shards of about 10).
fn chat_command(dir: &Path, domain: &str) -> impl Fn(&Path) -> std::process::Command + use<> {
    let tokenizer = dir.join("tokenizer.json");
    std::fs::write(&tokenizer, common::chat_tokenizer_json()).unwrap();
    let input = dir.join("chats.jsonl");
    let lines: String = (0..60)
        .map(|i| {
            format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"question {i}\"}}, \
                 {{\"role\": \"assistant\", \"content\": \"answer {}\"}}]}}\n",
                "x".repeat(i)
            )
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    let domain = domain.to_string();
    move |out: &Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"));
        c.arg("chat")
            .arg(&input)
            .arg("--tokenizer")
            .arg(&tokenizer)
            .args(["--domain", &domain, "--size-limit", "3000", "--out"])
            .arg(out);
        c
    }
}

#[test]
fn killed_chat_then_rerun_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    common::assert_kill_and_rerun_is_identical(
        chat_command(tmp.path(), "chat"),
        &tmp.path().join("clean"),
        &tmp.path().join("killed"),
        10,
    );
}

#[test]
fn rerun_removes_the_temps_of_killed_writers_and_refuses_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    common::assert_rerun_removes_dead_temps(chat_command(tmp.path(), "chat"), &out, &["."]);
    let before = common::files(&out);
    let output = chat_command(tmp.path(), "other")(&out).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("domain was \"chat\", now \"other\"") && err.contains("start afresh"),
        "{err}"
    );
    assert!(common::files(&out) == before);
}
