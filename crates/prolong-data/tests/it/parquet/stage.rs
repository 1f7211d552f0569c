//! Parquet through the tokenize stage, folders of inputs, and SlimPajama set selection.

use super::*;

#[test]
fn tokenize_stage_reads_parquet_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = byte_tokenizer(tmp.path());
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    write_fineweb(&dir.join("000_00000.parquet"), Compression::SNAPPY);
    write_fineweb(
        &dir.join("000_00001.parquet"),
        Compression::ZSTD(ZstdLevel::default()),
    );
    let files = input_files(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        files,
        [dir.join("000_00000.parquet"), dir.join("000_00001.parquet")]
    );
    let out = tmp.path().join("out");
    let options = TokenizeOptions {
        domain: "fineweb".into(),
        fields: Fields {
            id: Some("id".into()),
            ..Fields::default()
        },
        ..Default::default()
    };
    let stats = tokenize_task(
        &tok,
        &files,
        TaskSpec::new(0, 1).unwrap().at(&out),
        &options,
        &mut |_| {},
    )
    .unwrap()
    .unwrap();
    assert_eq!((stats.documents_in, stats.documents_out), (18, 10));
    assert_eq!(
        skip_reasons(&stats.skipped),
        [
            ("empty_document", 4),
            ("invalid_utf8", 2),
            ("missing_text_field", 2)
        ]
    );
    let first = dir.join("000_00000.parquet").display().to_string();
    assert_eq!(
        stats.skipped.examples[..4],
        [
            format!("{first}:2: missing_text_field (column \"text\" is null)"),
            format!("{first}:3: empty_document (no text)"),
            format!("{first}:5: empty_document (no text)"),
            format!("{first}:7: invalid_utf8 (incomplete utf-8 byte sequence from index 3)"),
        ]
    );
    let rows = fineweb_rows();
    let texts: Vec<&str> = rows
        .iter()
        .flatten()
        .filter_map(|(t, _)| t.as_deref())
        .filter_map(|t| std::str::from_utf8(t).ok())
        .filter(|t| !t.trim().is_empty())
        .collect();
    assert_eq!(texts.len(), 5);
    let ds = MdsDataset::open(&out).unwrap();
    assert_eq!(ds.len(), 10);
    for i in 0..ds.len() {
        let sample = ds.get(i).unwrap();
        let ids = sample.u32s("input_ids").unwrap().into_owned();
        let bytes: Vec<u32> = texts[i % 5].bytes().map(u32::from).collect();
        assert_eq!(ids, bytes, "document {i}");
        assert_eq!(sample.str("domain").unwrap(), "fineweb");
    }
}

#[test]
fn parquet_files_are_inputs_of_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    write_fineweb(&dir.join("b.parquet"), Compression::SNAPPY);
    std::fs::write(dir.join("a.jsonl"), "{\"text\": \"x\"}\n").unwrap();
    std::fs::write(dir.join("README"), "not an input").unwrap();
    let files = input_files(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(files, [dir.join("a.jsonl"), dir.join("b.parquet")]);
}

/// SlimPajama's shape: the set's name in a field of the `meta` struct.
const SLIMPAJAMA: &str = "message slimpajama {
    OPTIONAL BYTE_ARRAY text (UTF8);
    REQUIRED group meta {
        OPTIONAL BYTE_ARRAY redpajama_set_name (UTF8);
    }
}";

fn books_and_arxiv() -> Fields {
    Fields {
        select: Some(Select {
            field: "meta.redpajama_set_name".into(),
            values: vec!["RedPajamaBook".into(), "RedPajamaArXiv".into()],
        }),
        ..Default::default()
    }
}

#[test]
fn slimpajama_sets_are_selected_by_a_nested_field_in_parquet_and_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = [
        ("a book", Some("RedPajamaBook")),
        ("a web page", Some("RedPajamaCommonCrawl")),
        ("a paper", Some("RedPajamaArXiv")),
        ("no set", None),
        ("a question", Some("RedPajamaStackExchange")),
        ("another book", Some("RedPajamaBook")),
    ];
    let parquet = tmp.path().join("chunk.parquet");
    let group = |rows: &[(&str, Option<&str>)]| {
        vec![
            Col::Str(rows.iter().map(|r| s(r.0)).collect()),
            Col::Str(rows.iter().map(|r| r.1.and_then(s)).collect()),
        ]
    };
    write_parquet(
        &parquet,
        SLIMPAJAMA,
        vec![group(&rows[..4]), group(&rows[4..])],
        Compression::SNAPPY,
    );
    let jsonl = tmp.path().join("chunk.jsonl");
    let lines: Vec<String> = rows
        .iter()
        .map(|(text, set)| {
            let meta = match set {
                Some(set) => serde_json::json!({"redpajama_set_name": set}),
                None => serde_json::json!({}),
            };
            serde_json::json!({"text": text, "meta": meta}).to_string()
        })
        .collect();
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    for (path, stem) in [(&parquet, "chunk.parquet"), (&jsonl, "chunk.jsonl")] {
        let records = read_all(path, &books_and_arxiv());
        let kept: Vec<&str> = records
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|d| d.text.as_str())
            .collect();
        assert_eq!(kept, ["a book", "a paper", "another book"], "{stem}");
        assert_eq!(records[2], doc(&format!("{stem}:3"), "a paper"));
        let dropped: Vec<(SkipReason, u64)> = records.iter().filter_map(skip_of).collect();
        let not = SkipReason::NotSelected;
        assert_eq!(dropped, [(not, 2), (not, 4), (not, 5)], "{stem}");
    }
}
