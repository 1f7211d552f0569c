//! Replays the cargo-fuzz corpora of prolong-data (fuzz/corpus/tokenizer_json,
//! jsonl_reader and mediawiki_reader) under `cargo test` through the entry
//! points the fuzz targets call: no input may panic, and the named seeds give
//! exactly the outcome written here.

use std::collections::BTreeMap;

use prolong_data::fuzzing::{ReaderOutcome, jsonl_input, mediawiki_input, tokenizer_json_input};
use prolong_mds::fuzzing::corpus_files;

/// Every file of fuzz/corpus/`target` with its name, at least `at_least` of them.
fn corpus(target: &str, at_least: usize) -> Vec<(String, Vec<u8>)> {
    let files = corpus_files(target).unwrap();
    assert!(files.len() >= at_least, "the {target} corpus is missing");
    files
}

fn outcome(documents: u64, skipped: &[(&'static str, u64)]) -> ReaderOutcome {
    ReaderOutcome {
        documents,
        skipped: skipped.iter().copied().collect::<BTreeMap<_, _>>(),
    }
}

/// The fixed text the entry point encodes (one token per byte with the byte
/// tokenizers).
const FIXED_TEXT: &str = " Hello, world! It's 2024: naïve café, 東京 🚀\n\tx  y";

#[test]
fn tokenizer_json_corpus_replays_without_panics() {
    let bytes: Vec<u32> = FIXED_TEXT.bytes().map(u32::from).collect();
    let mut named = 0;
    for (name, input) in corpus("tokenizer_json", 12) {
        let result = std::panic::catch_unwind(|| tokenizer_json_input(&input))
            .unwrap_or_else(|_| panic!("{name} panics the tokenizer"));
        // (fast path, vocabulary size, whether the ids are the text's bytes) or the error.
        let expected: Result<(bool, usize, bool), &str> = match name.as_ref() {
            "bytes-gpt2" => Ok((true, 256, true)),
            "bytes-nfc-fallback" => Ok((false, 256, true)),
            "gpt2-merges-prefix-space" => Ok((true, 395, false)),
            "llama3-small" => Ok((true, 397, false)),
            "llama3-small-cut" => Err("tokenizer.json is not valid JSON: EOF while parsing"),
            "id-4e9" => Err("token \"Ġhuge\" has id 4000000000, which leaves"),
            "duplicate-id" => Err("share id 97"),
            "merge-not-in-vocab" => Err("merge 1 (\"a\" \"b\"): \"ab\" is not in the vocabulary"),
            // Found by the fuzzer: these panicked inside the tokenizers crate's BPE builder.
            "merge-result-longer-than-vocab" => Err("is not in the vocabulary"),
            "merge-shorter-than-prefix" => Err(
                "merge 1 (\"a\" \"b\"): \"b\" is shorter than the continuing_subword_prefix \"###\"",
            ),
            "merge-three-parts" => Err("merge 1 is \"a b c\""),
            "missing-byte-fallback" => Ok((false, 256, false)),
            _ => continue,
        };
        named += 1;
        match (&result, expected) {
            (Ok(got), Ok((fast, vocab_size, ids_are_bytes))) => {
                assert_eq!((got.fast, got.vocab_size), (fast, vocab_size), "{name}");
                assert_eq!(got.fixed_ids == bytes, ids_are_bytes, "{name}: {got:?}");
            }
            (Err(e), Err(want)) => assert!(e.contains(want), "{name}: {e}"),
            _ => panic!("{name}: {result:?}, expected {expected:?}"),
        }
    }
    assert_eq!(named, 12, "a named seed is missing from the corpus");
}

/// Replays fuzz/corpus/`target` through `read` (the `what` reader): no input
/// panics, and each seed named in `expected` gives exactly its outcome.
fn replay_reader(
    target: &str,
    what: &str,
    read: fn(&[u8]) -> ReaderOutcome,
    expected: &[(&str, ReaderOutcome)],
) {
    let mut named = 0;
    for (name, input) in corpus(target, expected.len()) {
        let result = std::panic::catch_unwind(|| read(&input))
            .unwrap_or_else(|_| panic!("{name} panics the {what} reader"));
        if let Some((_, want)) = expected.iter().find(|(n, _)| *n == name) {
            named += 1;
            assert_eq!(&result, want, "{name}");
        }
    }
    assert_eq!(
        named,
        expected.len(),
        "a named seed is missing from the corpus"
    );
}

#[test]
fn jsonl_reader_corpus_replays_without_panics() {
    replay_reader(
        "jsonl_reader",
        "JSONL",
        jsonl_input,
        &[
            ("documents", outcome(3, &[])),
            ("bom-crlf", outcome(3, &[])),
            ("empty", outcome(0, &[])),
            ("nested-deep", outcome(1, &[("malformed_json", 1)])),
            (
                "skips",
                outcome(
                    1,
                    &[
                        ("empty_document", 1),
                        ("invalid_utf8", 1),
                        ("malformed_json", 3),
                        ("missing_text_field", 1),
                        ("text_not_a_string", 1),
                    ],
                ),
            ),
        ],
    );
}

#[test]
fn mediawiki_reader_corpus_replays_without_panics() {
    replay_reader(
        "mediawiki_reader",
        "MediaWiki",
        mediawiki_input,
        &[
            ("enwiki-head", outcome(2, &[("redirect", 1)])),
            (
                "enwiki-cut-in-text",
                outcome(1, &[("redirect", 1), ("truncated_page", 1)]),
            ),
            ("unclosed-text", outcome(0, &[("malformed_xml", 1)])),
            ("not-xml", outcome(0, &[("malformed_xml", 1)])),
            ("pages-dtd", outcome(3, &[("empty_document", 1)])),
        ],
    );
}
