//! The tokenize stage: documents in, tokenized MDS out, bad records counted
//! by reason with file and line, tasks sharded by rank, outputs deterministic
//! and safe to kill.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::{TokenizeOptions, input_files, tokenize_task};

fn options() -> TokenizeOptions {
    TokenizeOptions {
        domain: "web".into(),
        ..Default::default()
    }
}

fn run(
    tok: &Tokenizer,
    inputs: &[PathBuf],
    out: &Path,
    task: TaskSpec,
) -> Option<prolong_data::tokenize::stage::TokenizeStats> {
    let files = input_files(inputs).unwrap();
    tokenize_task(tok, &files, task.at(out), &options(), &mut |_| {}).unwrap()
}

/// [`run`] as the only task, which must write its output.
fn run_alone(
    tok: &Tokenizer,
    inputs: &[PathBuf],
    out: &Path,
) -> prolong_data::tokenize::stage::TokenizeStats {
    run(tok, inputs, out, TaskSpec::new(0, 1).unwrap()).unwrap()
}

#[test]
fn bad_records_are_counted_by_reason_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = byte_tokenizer(tmp.path());
    let input = tmp.path().join("docs.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    // line 1: ok, after a UTF-8 byte order mark (it was malformed_json)
    f.write_all(b"\xef\xbb\xbf{\"text\": \"hello\"}\n").unwrap();
    f.write_all(b"{\"text\": \"broken\"\n").unwrap(); // 2: malformed
    f.write_all(b"{\"text\": \"caf\xe9\"}\n").unwrap(); // 3: invalid UTF-8
    f.write_all(b"{\"body\": \"no text field\"}\n").unwrap(); // 4: missing text
    f.write_all(b"{\"text\": \"   \"}\n").unwrap(); // 5: empty
    f.write_all(b"\n").unwrap(); // 6: blank line, not a record
    f.write_all(b"{\"text\": 42}\n").unwrap(); // 7: not a string
    f.write_all(b"{\"text\": \"world\\nagain\"}").unwrap(); // 8: ok, no final newline
    drop(f);
    let out = tmp.path().join("out");
    let stats = run_alone(&tok, &[input], &out);
    assert_eq!((stats.documents_in, stats.documents_out), (7, 2));
    assert_eq!(
        skip_reasons(&stats.skipped),
        vec![
            ("empty_document", 1),
            ("invalid_utf8", 1),
            ("malformed_json", 1),
            ("missing_text_field", 1),
            ("text_not_a_string", 1)
        ]
    );
    let lines: Vec<&str> = stats
        .skipped
        .examples
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    for (line, example) in [2, 3, 4, 5, 7].iter().zip(&lines) {
        assert!(
            example.ends_with(&format!("docs.jsonl:{line}")),
            "{example}"
        );
    }
    let docs = read_tokenized(&out);
    assert_eq!(
        docs,
        vec![
            (
                "web".to_string(),
                b"hello".iter().map(|&b| b as u32).collect()
            ),
            (
                "web".to_string(),
                b"world\nagain".iter().map(|&b| b as u32).collect()
            ),
        ]
    );
    // Stats and marker are written, and the root index merged.
    assert!(out.join("proc0-1.done").exists() && out.join("index.json").exists());
}

#[test]
fn compressed_inputs_read_like_plain_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = byte_tokenizer(tmp.path());
    let text: String = (0..200)
        .map(|i| format!("{{\"text\": \"document number {i}\"}}\n"))
        .collect();
    let plain = tmp.path().join("a.jsonl");
    std::fs::write(&plain, &text).unwrap();
    let zst = tmp.path().join("a.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let gz = tmp.path().join("a.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let mut outputs = Vec::new();
    for (name, input) in [("plain", plain), ("zst", zst), ("gz", gz)] {
        let out = tmp.path().join(name);
        run_alone(&tok, &[input], &out);
        outputs.push(read_tokenized(&out));
    }
    assert_eq!(outputs[0].len(), 200);
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);

    // A zstd stream cut short is counted, not fatal.
    let cut = tmp.path().join("cut.jsonl.zst");
    let full = zstd::encode_all(text.repeat(50).as_bytes(), 3).unwrap();
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let stats = run_alone(&tok, &[cut], &tmp.path().join("cut"));
    assert_eq!(stats.skipped.by_reason.get("corrupt_stream"), Some(&1));
}

#[test]
fn tasks_shard_inputs_and_merge_when_all_are_done() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = byte_tokenizer(tmp.path());
    let inputs = tmp.path().join("in");
    write_files(
        &inputs,
        (0..5).map(|i| (format!("f{i}.txt"), format!("text of file {i}"))),
    );
    write_files(&inputs, [("ignored.bin", b"\0\0")]);
    let out = tmp.path().join("out");
    let t0 = TaskSpec::new(0, 2).unwrap();
    let t1 = TaskSpec::new(1, 2).unwrap();
    let s1 = run(&tok, std::slice::from_ref(&inputs), &out, t1).unwrap();
    assert_eq!(
        s1.files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect::<Vec<_>>(),
        ["f1.txt", "f3.txt"]
    );
    assert!(
        !out.join("index.json").exists(),
        "merged before every task was done"
    );
    run(&tok, std::slice::from_ref(&inputs), &out, t0).unwrap();
    assert!(out.join("index.json").exists());
    let docs = read_tokenized(&out);
    let texts: Vec<String> = docs
        .iter()
        .map(|(_, ids)| ids.iter().map(|&b| b as u8 as char).collect())
        .collect();
    assert_eq!(
        texts,
        [
            "text of file 0",
            "text of file 2",
            "text of file 4",
            "text of file 1",
            "text of file 3"
        ]
    );
    // A completed task is skipped; one without its marker is redone, identically.
    assert!(run(&tok, std::slice::from_ref(&inputs), &out, t0).is_none());
    let before = files(&out);
    std::fs::remove_file(out.join("proc0-2.done")).unwrap();
    std::fs::write(out.join("proc0-2/shard.00000.mds"), b"half-written").unwrap();
    assert!(run(&tok, std::slice::from_ref(&inputs), &out, t0).is_some());
    assert_eq!(files(&out), before);
}

#[test]
fn killed_run_then_rerun_is_byte_identical_to_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let tokenizer = write_byte_tokenizer(tmp.path());
    let input = tmp.path().join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..300 {
        writeln!(
            f,
            "{{\"text\": \"document {i}: {}\"}}",
            "the quick brown fox jumps over the lazy dog ".repeat(i % 5 + 1)
        )
        .unwrap();
    }
    drop(f);
    let tokenizer = tokenizer.to_str().unwrap();
    let args = cli_into(
        "tokenize",
        &[&input],
        &[
            "--tokenizer",
            tokenizer,
            "--size-limit",
            "40000",
            "--domain",
            "web",
        ],
    );
    assert_kill_and_rerun_is_identical(args, tmp.path(), 10);
}

/// `prolong-data tokenize INPUT --tokenizer TOKENIZER --domain DOMAIN --out OUT`.
fn tokenize_command(
    input: &Path,
    tokenizer: &Path,
    domain: &str,
) -> impl Fn(&Path) -> std::process::Command + use<> {
    let tokenizer = tokenizer.to_str().unwrap();
    cli_into(
        "tokenize",
        &[input],
        &["--tokenizer", tokenizer, "--domain", domain],
    )
}

/// D3: a kill after the marker and before the merged index.json was renamed
/// left the output without it for good (every re-run exited 0 and skipped).
/// Now the re-run writes it, and removes the killed writers' temps.
#[test]
fn rerun_writes_a_missing_merged_index_and_removes_dead_temps() {
    let tmp = tempfile::tempdir().unwrap();
    let tokenizer = write_byte_tokenizer(tmp.path());
    let input = tmp.path().join("docs.jsonl");
    std::fs::write(&input, "{\"text\": \"one\"}\n{\"text\": \"two\"}\n").unwrap();
    let command = tokenize_command(&input, &tokenizer, "web");
    common::assert_rerun_removes_dead_temps(command, &tmp.path().join("tok"), &["."]);
}

/// D4: a re-run with another tokenizer, other inputs or another domain once
/// kept the old output and printed its stats. Now each is refused with one
/// line naming what changed, and the output is left alone; so is an output
/// inside the input folder (D10).
#[test]
fn rerun_with_other_settings_or_into_the_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tokenizer = write_byte_tokenizer(tmp.path());
    let fused = byte_tokenizer_json().replace("\"fuse_unk\":false", "\"fuse_unk\":true");
    write_files(
        tmp.path(),
        [
            ("other/tokenizer.json", fused.as_str()),
            ("docs/a.jsonl", "{\"text\": \"one\"}\n"),
            ("b.jsonl", "{\"text\": \"two\"}\n"),
        ],
    );
    let other_dir = tmp.path().join("other");
    let other_tokenizer = other_dir.join("tokenizer.json");
    let docs = tmp.path().join("docs");
    let second = tmp.path().join("b.jsonl");
    let out = tmp.path().join("tok");
    succeeded(
        tokenize_command(&docs, &tokenizer, "web")(&out)
            .output()
            .unwrap(),
    );
    // A copy of the same tokenizer elsewhere is the same tokenizer.
    let copy = other_dir.join("copy.json");
    std::fs::copy(&tokenizer, &copy).unwrap();
    succeeded(
        tokenize_command(&docs, &copy, "web")(&out)
            .output()
            .unwrap(),
    );
    let before = files(&out);
    for (input, tokenizer, domain, out, want) in [
        (&docs, &other_tokenizer, "web", &out, "tokenizer_hash was"),
        (
            &docs,
            &tokenizer,
            "book",
            &out,
            "domain was \"web\", now \"book\"",
        ),
        (&second, &tokenizer, "web", &out, "files was"),
        (
            &docs,
            &tokenizer,
            "web",
            &docs.join("tok"),
            "is inside the input",
        ),
    ] {
        let output = tokenize_command(input, tokenizer, domain)(out)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{want}");
        let err = String::from_utf8_lossy(&output.stderr);
        common::assert_error_line(&err, &[want]);
        let how = if want.starts_with("is") {
            "apart from the inputs"
        } else {
            "start afresh"
        };
        assert!(err.contains(how), "{err}");
    }
    assert!(files(&out) == before, "a refused run changed the output");
    assert!(!docs.join("tok").exists());
}

#[test]
fn kjv_tokenizes_to_the_same_ids_as_one_whole_document_encode() {
    let (Some(kjv), Some(tokenizer)) = (
        fixture("kjv.txt", "kjv tokenize"),
        fixture("tokenizer.json", "kjv tokenize"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let tok = Tokenizer::from_file(&tokenizer).unwrap();
    let out = tmp.path().join("out");
    run_alone(&tok, std::slice::from_ref(&kjv), &out);
    let docs = read_tokenized(&out);
    assert_eq!(docs.len(), 1);
    let reference =
        prolong_data::tokenize::reference_tokenizer(&std::fs::read(&tokenizer).unwrap()).unwrap();
    let text = std::fs::read_to_string(&kjv).unwrap();
    let want = reference
        .encode_fast(text.as_str(), false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(docs[0].1.len(), want.len());
    assert!(docs[0].1 == want);
}

#[test]
fn mediawiki_pages_not_emitted_are_counted_and_a_malformed_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = byte_tokenizer(tmp.path());
    let page = |t: &str| format!("<page><title>{t}</title><text>{t} text</text></page>\n");
    // The file ends inside page C's text: C was dropped without a count.
    let dump = tmp.path().join("dump.xml");
    std::fs::write(
        &dump,
        format!(
            "<mediawiki>\n{}{}<page><title>C</title><text>C te",
            page("A"),
            page("B")
        ),
    )
    .unwrap();
    let stats = run_alone(&tok, &[dump], &tmp.path().join("out"));
    assert_eq!((stats.documents_in, stats.documents_out), (3, 2));
    assert_eq!(skip_reasons(&stats.skipped), vec![("truncated_page", 1)]);

    // An end tag that closes the wrong element: one error naming the file
    // and line (it gave 0 documents and exit 0).
    let bad = tmp.path().join("bad.xml");
    std::fs::write(
        &bad,
        format!("<mediawiki>\n{}<page><text>x</page>\n", page("A")),
    )
    .unwrap();
    let files = input_files(std::slice::from_ref(&bad)).unwrap();
    let err = tokenize_task(
        &tok,
        &files,
        TaskSpec::new(0, 1).unwrap().at(&tmp.path().join("out2")),
        &options(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "{}:3: malformed_xml (not well-formed XML at line 3, byte ",
            bad.display()
        )),
        "{err}"
    );
    assert!(!tmp.path().join("out2/index.json").exists());
}

/// A folder written by `repos` holds its stats beside the documents: tokenizing
/// the folder reads the documents only (the stats used to come in as 38
/// `malformed_json` lines), while a stats file named on its own is read as asked.
#[test]
fn a_folders_stats_files_are_not_read_as_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repos");
    write_files(
        &dir,
        [
            ("part-00000-of-00001.jsonl", "{\"text\": \"a\"}\n"),
            (
                "part-00000-of-00001.stats.json",
                "{\n  \"task\": \"part-00000-of-00001\"\n}\n",
            ),
            ("other.json", "{\"text\": \"b\"}\n"),
        ],
    );
    let stats = dir.join("part-00000-of-00001.stats.json");
    let files = input_files(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        files,
        vec![
            dir.join("other.json"),
            dir.join("part-00000-of-00001.jsonl")
        ]
    );
    assert_eq!(
        input_files(std::slice::from_ref(&stats)).unwrap(),
        vec![stats]
    );
}
