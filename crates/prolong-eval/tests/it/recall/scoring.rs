//! Scorers, and instances as JSONL.

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn spec_scorer_examples() {
    let answers = strings(&["1234567", "7654321", "1111111", "2222222"]);
    assert_eq!(
        score(Task::NiahMultivalue, "... are 1234567, 7654321", &answers),
        0.5
    );
    assert_eq!(
        score(
            Task::JsonKv,
            "Corresponding value: 3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            &strings(&["3f2504e0-4f89-41d3-9a0c-0305e82c3301"])
        ),
        1.0
    );
}

#[test]
fn ruler_scorer_partial_credit_and_case() {
    let answers = strings(&["1234567", "7654321", "1111111"]);
    assert_eq!(ruler_recall(" 1234567.", &answers), 1.0 / 3.0);
    assert_eq!(ruler_recall("7654321 1111111 1234567", &answers), 1.0);
    assert_eq!(ruler_recall("123456 7", &answers), 0.0);
    // Case-insensitive both ways.
    let uuid = strings(&["3f2504e0-4f89-41d3-9a0c-0305e82c3301"]);
    assert_eq!(
        score(
            Task::NiahMultikey3,
            "is 3F2504E0-4F89-41D3-9A0C-0305E82C3301.",
            &uuid
        ),
        1.0
    );
    // A broken UUID is no match.
    assert_eq!(
        score(
            Task::NiahMultikey3,
            "3f2504e0 4f89-41d3-9a0c-0305e82c3301",
            &uuid
        ),
        0.0
    );
    assert_eq!(ruler_recall("anything", &[]), 0.0);
}

#[test]
fn json_kv_normalisation() {
    assert_eq!(
        normalize("  The Answer, is: AN apple!\n\tA-b_c "),
        "answer is apple abc"
    );
    // Articles only as whole words.
    assert_eq!(normalize("theme anatomy a1 athe"), "theme anatomy a1 athe");
    // Punctuation goes first, so "the." is still an article; non-ASCII stays.
    assert_eq!(normalize("the. thé—the"), "thé—");
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    // Hyphens are punctuation on both sides.
    assert_eq!(json_kv_match("3f2504e04f8941d39a0c0305e82c3301", gold), 1.0);
    // Quotes around the value are punctuation.
    assert_eq!(
        json_kv_match("\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\"", gold),
        1.0
    );
    assert_eq!(
        json_kv_match("3f2504e0-4f89-41d3-9a0c-0305e82c330", gold),
        0.0
    );
    // The article "a" between words is replaced, joining what it separated with a space.
    assert_eq!(json_kv_match("value a b", "value b"), 1.0);
    assert_eq!(json_kv_match("value ab", "value b"), 0.0);
}

#[test]
fn json_kv_reads_the_raw_output_and_the_prefixed_line() {
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    // The prefix in any case, the value after it on its line.
    assert_eq!(
        json_kv_match(
            "CORRESPONDING VALUE: 3f2504e0-4f89-41d3-9a0c-0305e82c3301\nKey:",
            gold
        ),
        1.0
    );
    // No prefix, the value further down the raw output.
    assert_eq!(
        json_kv_match(
            "I think\nit is \"3f2504e0-4f89-41d3-9a0c-0305e82c3301\".",
            gold
        ),
        1.0
    );
    // Another record's value, or the key, scores 0.
    assert_eq!(
        json_kv_match(
            "Corresponding value: 9f2504e0-4f89-41d3-9a0c-0305e82c3301",
            gold
        ),
        0.0
    );
    assert_eq!(json_kv_match("", gold), 0.0);
    // Spaces inside the value break it (whitespace is kept as one space).
    assert_eq!(
        json_kv_match("3f2504e0 4f89 41d3 9a0c 0305e82c3301", gold),
        0.0
    );
}

// ---------------------------------------------------------------------------
// Instances as JSONL.

#[test]
fn instances_round_trip_and_match_the_schema() {
    let tok = byte_tokenizer();
    let insts = vec![
        generate(Task::JsonKv, 1024, 0, 1, tok, None).unwrap(),
        generate(Task::NiahMultivalue, 1024, 0, 1, tok, Some(small_prose())).unwrap(),
    ];
    let bytes = to_jsonl(&insts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instances.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), insts);

    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../schemas/recall-instance.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let required: HashSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let properties: HashSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for line in String::from_utf8(bytes).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: HashSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, required, "every field is required and documented");
        // Fill instances have every required field and no other; HELMET-protocol ones
        // add `protocol` (and `truncated_tokens` when cut).
        assert_eq!(
            properties
                .difference(&keys)
                .copied()
                .collect::<HashSet<_>>(),
            HashSet::from(["protocol", "truncated_tokens"])
        );
        let task = v["task"].as_str().unwrap();
        let names: Vec<&str> = schema["properties"]["task"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(names.contains(&task), "{task}");
    }

    std::fs::write(&path, b"{\"task\": \"json_kv\"}\n").unwrap();
    let err = read_jsonl(&path).unwrap_err().to_string();
    assert!(err.contains("instances.jsonl:1:"), "{err}");
}
