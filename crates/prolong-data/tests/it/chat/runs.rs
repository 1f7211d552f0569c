//! Chat runs: compressed inputs, shards and reruns, pack keeps the mask, kills and temps.

use super::*;

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
        TaskSpec::new(0, 1).unwrap().at(&packed),
        &options,
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
    let tokenizer = tokenizer.to_str().unwrap();
    let flags = [
        "--tokenizer",
        tokenizer,
        "--domain",
        domain,
        "--size-limit",
        "3000",
    ];
    common::cli_into("chat", &[input], &flags)
}

#[test]
fn killed_chat_then_rerun_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    common::assert_kill_and_rerun_is_identical(chat_command(tmp.path(), "chat"), tmp.path(), 10);
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
    common::assert_error_line(
        &err,
        &["domain was \"chat\", now \"other\"", "start afresh"],
    );
    assert!(common::files(&out) == before);
}
