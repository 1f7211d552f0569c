//! Parquet input (FineWeb-style): rows in file order over row groups, pages
//! and read batches; null/empty/invalid text skipped with the row number;
//! a missing column, a text column of another type, a truncated file: one
//! error naming the file; corrupt data further on: a `corrupt_stream` skip,
//! never a panic; and the tokenize stage end to end.
#![cfg(feature = "parquet")]

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::*;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use prolong_data::documents::{
    Document, Fields, GroupFields, Record, Select, SkipReason, read_documents,
};
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::{TokenizeOptions, input_files, tokenize_task};
use prolong_mds::MdsDataset;

/// One column of one row group; `Req*` for REQUIRED columns (no nulls).
enum Col {
    Str(Vec<Cell>),
    ReqStr(Vec<Vec<u8>>),
    I64(Vec<Option<i64>>),
}

fn s(v: &str) -> Cell {
    Some(v.as_bytes().to_vec())
}

/// Writes a file of `schema` with one row group per item of `groups`, in
/// small pages (3 rows) so that column chunks span several.
fn write_parquet(path: &Path, schema: &str, groups: Vec<Vec<Col>>, compression: Compression) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression)
            .set_data_page_row_count_limit(3)
            .set_write_batch_size(3)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    for group in groups {
        let mut rg = writer.next_row_group().unwrap();
        for col in group {
            let mut w = rg.next_column().unwrap().unwrap();
            match col {
                Col::Str(values) => {
                    let defs: Vec<i16> = values.iter().map(|v| v.is_some() as i16).collect();
                    let vals: Vec<ByteArray> =
                        values.into_iter().flatten().map(Into::into).collect();
                    w.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
                Col::ReqStr(values) => {
                    let vals: Vec<ByteArray> = values.into_iter().map(Into::into).collect();
                    w.typed::<ByteArrayType>()
                        .write_batch(&vals, None, None)
                        .unwrap();
                }
                Col::I64(values) => {
                    let defs: Vec<i16> = values.iter().map(|v| v.is_some() as i16).collect();
                    let vals: Vec<i64> = values.into_iter().flatten().collect();
                    w.typed::<Int64Type>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
            }
            w.close().unwrap();
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
}

const FINEWEB: &str = "message fineweb {
    OPTIONAL BYTE_ARRAY text (UTF8);
    OPTIONAL BYTE_ARRAY id (UTF8);
    OPTIONAL BYTE_ARRAY dump (UTF8);
    OPTIONAL BYTE_ARRAY url (UTF8);
    OPTIONAL INT64 token_count;
}";

/// A nullable string cell.
type Cell = Option<Vec<u8>>;

/// Three row groups of FineWeb-shaped rows: (text, id).
fn fineweb_rows() -> Vec<Vec<(Cell, Cell)>> {
    vec![
        vec![
            (s("Hello, world."), s("<urn:uuid:1>")),           // row 1
            (None, s("<urn:uuid:2>")),                         // 2: null text
            (s(""), s("<urn:uuid:3>")),                        // 3: empty
            (s("héllo wörld — 日本語 🎉"), s("<urn:uuid:4>")), // 4
            (s("  \n\t"), s("<urn:uuid:5>")),                  // 5: blank
        ],
        vec![
            (s("second group\nline two"), s("<urn:uuid:6>")), // 6
            (Some(b"caf\xe9".to_vec()), s("<urn:uuid:7>")),   // 7: invalid UTF-8
            (s("no id here"), None),                          // 8: null id
        ],
        vec![
            (s("third group, one row"), s("<urn:uuid:9>")), // 9
        ],
    ]
}

fn write_fineweb(path: &Path, compression: Compression) {
    let groups = fineweb_rows()
        .into_iter()
        .map(|rows| {
            let n = rows.len();
            let (texts, ids): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            vec![
                Col::Str(texts),
                Col::Str(ids),
                Col::Str(vec![s("CC-MAIN-2024-10"); n]),
                Col::Str((0..n).map(|i| s(&format!("https://x.org/{i}"))).collect()),
                Col::I64((0..n).map(|i| Some(i as i64 * 100)).collect()),
            ]
        })
        .collect();
    write_parquet(path, FINEWEB, groups, compression);
}

fn fields(text: &str, id: Option<&str>) -> Fields {
    Fields {
        text: text.into(),
        id: id.map(Into::into),
        ..Default::default()
    }
}

fn read_all(path: &Path, fields: &Fields) -> Vec<Record> {
    read_documents(path, fields).unwrap().collect()
}

fn doc(id: &str, text: &str) -> Record {
    Ok(Document {
        id: id.into(),
        text: text.into(),
        file_of: None,
    })
}

/// (reason, row) of a skip.
fn skip_of(r: &Record) -> Option<(SkipReason, u64)> {
    r.as_ref().err().map(|s| (s.reason, s.line))
}

fn open_error(path: &Path, fields: &Fields) -> String {
    match read_documents(path, fields) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn rows_are_read_in_order_over_row_groups_with_skips_at_their_row() {
    let tmp = tempfile::tempdir().unwrap();
    let codecs = [
        ("plain", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
    ];
    for (name, codec) in codecs {
        let path = tmp.path().join(format!("{name}.parquet"));
        write_fineweb(&path, codec);
        let meta = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(meta.num_row_groups(), 3);
        let records = read_all(&path, &fields("text", Some("id")));
        assert_eq!(records.len(), 9, "{name}");
        let stem = format!("{name}.parquet");
        let expected_docs = [
            (0, doc("<urn:uuid:1>", "Hello, world.")),
            (3, doc("<urn:uuid:4>", "héllo wörld — 日本語 🎉")),
            (5, doc("<urn:uuid:6>", "second group\nline two")),
            (7, doc(&format!("{stem}:8"), "no id here")),
            (8, doc("<urn:uuid:9>", "third group, one row")),
        ];
        for (i, d) in &expected_docs {
            assert_eq!(&records[*i], d, "{name} row {}", i + 1);
        }
        let skips: Vec<(SkipReason, u64)> = records.iter().filter_map(skip_of).collect();
        assert_eq!(
            skips,
            vec![
                (SkipReason::MissingTextField, 2),
                (SkipReason::EmptyDocument, 3),
                (SkipReason::EmptyDocument, 5),
                (SkipReason::InvalidUtf8, 7),
            ],
            "{name}"
        );
        for r in &records {
            if let Err(skip) = r {
                assert_eq!(skip.file, path);
            }
        }
    }
}

#[test]
fn ids_default_to_file_and_row_and_may_be_integers() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("part-0.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let ids: Vec<String> = read_all(&path, &fields("text", None))
        .into_iter()
        .filter_map(Result::ok)
        .map(|d| d.id)
        .collect();
    assert_eq!(
        ids,
        [
            "part-0.parquet:1",
            "part-0.parquet:4",
            "part-0.parquet:6",
            "part-0.parquet:8",
            "part-0.parquet:9"
        ]
    );
    // An integer id column: row i of each group has token_count i * 100.
    let ids: Vec<String> = read_all(&path, &fields("text", Some("token_count")))
        .into_iter()
        .filter_map(Result::ok)
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["0", "300", "0", "200", "0"]);
    // --text-field picks any string column.
    let urls: Vec<String> = read_all(&path, &fields("url", Some("id")))
        .into_iter()
        .map(|r| r.unwrap().text)
        .collect();
    assert_eq!(urls.len(), 9);
    assert_eq!(urls[5], "https://x.org/0");
}

#[test]
fn big_row_groups_are_read_in_batches_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.parquet");
    let schema = "message m { REQUIRED BYTE_ARRAY text (UTF8); OPTIONAL INT64 id; }";
    let sizes = [2500usize, 1, 1100];
    let mut next = 0i64;
    let groups = sizes
        .iter()
        .map(|&n| {
            let ids: Vec<i64> = (next..next + n as i64).collect();
            next += n as i64;
            let texts = ids
                .iter()
                .map(|i| format!("doc {i}").into_bytes())
                .collect();
            vec![
                Col::ReqStr(texts),
                Col::I64(ids.into_iter().map(Some).collect()),
            ]
        })
        .collect();
    write_parquet(
        &path,
        schema,
        groups,
        Compression::ZSTD(ZstdLevel::default()),
    );
    let records = read_all(&path, &fields("text", Some("id")));
    assert_eq!(records.len(), 3601);
    for (i, r) in records.into_iter().enumerate() {
        assert_eq!(r, doc(&i.to_string(), &format!("doc {i}")));
    }
}

#[test]
fn a_missing_column_is_one_error_naming_file_column_and_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let err = open_error(&path, &fields("content", None));
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("no column \"content\""), "{err}");
    assert!(
        err.contains("columns: text, id, dump, url, token_count"),
        "{err}"
    );
    let err = open_error(&path, &fields("text", Some("doc_id")));
    assert!(err.contains("no column \"doc_id\""), "{err}");
}

#[test]
fn a_text_column_of_another_type_is_one_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let err = open_error(&path, &fields("token_count", None));
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains("column \"token_count\" holds INT64, not strings"),
        "{err}"
    );
}

#[test]
fn a_truncated_or_foreign_file_is_one_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let bytes = std::fs::read(&path).unwrap();
    let cases: [(&str, &[u8]); 4] = [
        ("half.parquet", &bytes[..bytes.len() / 2]),
        ("footer-cut.parquet", &bytes[..bytes.len() - 1]),
        ("empty.parquet", b""),
        ("json.parquet", b"{\"text\": \"not parquet\"}\n"),
    ];
    for (name, data) in cases {
        let bad = tmp.path().join(name);
        std::fs::write(&bad, data).unwrap();
        let err = open_error(&bad, &fields("text", None));
        assert!(err.contains(&bad.display().to_string()), "{err}");
        assert!(err.contains("not a readable Parquet file"), "{err}");
    }
}

#[test]
fn corrupt_data_is_a_corrupt_stream_skip_at_the_row_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let meta = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    // The text column chunk of the second row group (rows 6..=8) starts here.
    let (start, _) = meta.metadata().row_group(1).column(0).byte_range();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[start as usize..start as usize + 16].fill(0xff);
    std::fs::write(&path, &bytes).unwrap();
    let records = read_all(&path, &fields("text", Some("id")));
    assert_eq!(records.len(), 6, "{records:?}");
    assert_eq!(records[0], doc("<urn:uuid:1>", "Hello, world."));
    let last = records.last().unwrap().as_ref().unwrap_err();
    assert_eq!((last.reason, last.line), (SkipReason::CorruptStream, 6));
    assert_eq!(last.file, path);
}

/// Every byte of the data region overwritten in turn: the reader ends,
/// with documents, skips, or one error, but never panics.
#[test]
fn damaged_bytes_anywhere_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    let good = std::fs::read(&path).unwrap();
    let bad = tmp.path().join("bad.parquet");
    let fields = fields("text", Some("id"));
    let mut corrupt = 0;
    for at in (4..good.len() - 8).step_by(3) {
        for value in [0x00, 0xff] {
            let mut bytes = good.clone();
            bytes[at] = value;
            std::fs::write(&bad, &bytes).unwrap();
            let Ok(records) = read_documents(&bad, &fields) else {
                continue;
            };
            let records: Vec<Record> = records.collect();
            assert!(records.len() <= 9, "{at}: {records:?}");
            if let Some(Err(s)) = records.last()
                && s.reason == SkipReason::CorruptStream
            {
                corrupt += 1;
                assert!(s.line >= 1 && s.line <= 9, "{s}");
            }
        }
    }
    assert!(corrupt > 0);
}

#[test]
fn tokenize_stage_reads_parquet_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = Tokenizer::from_file(write_byte_tokenizer(tmp.path())).unwrap();
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
        id_field: Some("id".into()),
        ..Default::default()
    };
    let stats = tokenize_task(
        &tok,
        &files,
        &out,
        TaskSpec::new(0, 1).unwrap(),
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

/// The Stack v1's shape (the columns grouping reads, and one it does not).
const STACK: &str = "message stack {
    OPTIONAL BYTE_ARRAY content (UTF8);
    OPTIONAL BYTE_ARRAY max_stars_repo_name (UTF8);
    OPTIONAL BYTE_ARRAY max_stars_repo_path (UTF8);
    OPTIONAL INT64 size;
}";

/// Two files of per-file rows: repositories spread over both files and out
/// of path order, a null text, a row without a repository, a second row of
/// one path, a file with a header-like line.
fn write_stack(dir: &Path) -> Vec<PathBuf> {
    type Row<'a> = (Option<&'a str>, Option<&'a str>, &'a str);
    let files: [Vec<Vec<Row>>; 2] = [
        vec![
            vec![
                (Some("fn b() {}"), Some("a/x"), "src/b.rs"),
                (Some("x = 1\n"), Some("c/z"), "main.py"),
            ],
            vec![
                (Some("# A\n"), Some("a/x"), "README.md"),
                (None, Some("a/x"), "gone.rs"),
                (Some("orphan\n"), None, "o.rs"),
            ],
        ],
        vec![vec![
            (Some("dup\n"), Some("a/x"), "src/b.rs"),
            (Some("==> evil <==\n"), Some("c/z"), "evil.txt"),
            (Some("y = 2\n"), Some("c/z"), "lib/util.py"),
            (Some("only\n"), Some("b/y"), "one.c"),
        ]],
    ];
    let mut paths = Vec::new();
    for (i, groups) in files.into_iter().enumerate() {
        let path = dir.join(format!("train-{i}.parquet"));
        let groups = groups
            .into_iter()
            .map(|rows| {
                vec![
                    Col::Str(rows.iter().map(|r| r.0.and_then(s)).collect()),
                    Col::Str(rows.iter().map(|r| r.1.and_then(s)).collect()),
                    Col::Str(rows.iter().map(|r| s(r.2)).collect()),
                    Col::I64(rows.iter().map(|r| Some(r.2.len() as i64)).collect()),
                ]
            })
            .collect();
        write_parquet(&path, STACK, groups, Compression::SNAPPY);
        paths.push(path);
    }
    paths
}

/// The documents of a tokenized dataset as text (the byte tokenizer's ids
/// are the bytes), sorted.
fn texts(dir: &Path) -> Vec<String> {
    let mut texts: Vec<String> = read_tokenized(dir)
        .into_iter()
        .map(|(_, ids)| String::from_utf8(ids.iter().map(|&b| b as u8).collect()).unwrap())
        .collect();
    texts.sort();
    texts
}

#[test]
fn stack_rows_become_one_document_per_repository_whatever_the_task_count() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_stack(tmp.path());
    let tok = Tokenizer::from_file(write_byte_tokenizer(tmp.path())).unwrap();
    let options = TokenizeOptions {
        domain: "thestackv1_concat_by_repo".into(),
        text_field: "content".into(),
        group_by_repo: Some(GroupFields {
            repo: "max_stars_repo_name".into(),
            path: "max_stars_repo_path".into(),
        }),
        ..Default::default()
    };
    let run = |out: &Path, world_size: usize| {
        (0..world_size)
            .map(|rank| {
                let task = TaskSpec::new(rank, world_size).unwrap();
                tokenize_task(&tok, &files, out, task, &options, &mut |_| {})
                    .unwrap()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let one = tmp.path().join("one");
    let stats = run(&one, 1).remove(0);
    let expected = [
        "==> README.md <==\n# A\n\n==> src/b.rs <==\nfn b() {}\n",
        "==> lib/util.py <==\ny = 2\n\n==> main.py <==\nx = 1\n",
        "==> one.c <==\nonly\n",
    ];
    assert_eq!(texts(&one), expected);
    let reasons = |stats: &[prolong_data::tokenize::stage::TokenizeStats]| {
        let mut all = std::collections::BTreeMap::new();
        for s in stats {
            for (reason, n) in &s.skipped.by_reason {
                *all.entry(reason.clone()).or_insert(0) += n;
            }
        }
        all.into_iter().collect::<Vec<(String, u64)>>()
    };
    let want: Vec<(String, u64)> = [
        "duplicate_path",
        "header_collision",
        "missing_group_field",
        "missing_text_field",
    ]
    .iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    assert_eq!(reasons(std::slice::from_ref(&stats)), want);
    assert_eq!((stats.documents_in, stats.documents_out), (7, 3));
    let second = files[1].display().to_string();
    assert!(
        stats.skipped.examples.contains(&format!(
            "{second}:1: duplicate_path (a/x src/b.rs: a second row of this path)"
        )),
        "{:?}",
        stats.skipped.examples
    );
    // No scratch left behind.
    let names: Vec<String> = std::fs::read_dir(&one)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("groups")), "{names:?}");

    // Three tasks: every repository whole in one of them, skips counted once.
    let three = tmp.path().join("three");
    let parts = run(&three, 3);
    assert_eq!(texts(&three), expected);
    assert_eq!(reasons(&parts), want);
    assert_eq!(parts.iter().map(|p| p.documents_out).sum::<u64>(), 3);
}

#[test]
fn cli_groups_by_repository_and_recipes_name_the_options() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("stack");
    std::fs::create_dir(&input).unwrap();
    write_stack(&input);
    let tokenizer = write_byte_tokenizer(tmp.path());
    let out = tmp.path().join("out");
    common::succeeded(
        std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("tokenize")
            .arg(&input)
            .arg("--tokenizer")
            .arg(&tokenizer)
            .args([
                "--text-field",
                "content",
                "--repo-field",
                "max_stars_repo_name",
            ])
            .args(["--path-field", "max_stars_repo_path", "--json", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert_eq!(texts(&out).len(), 3);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let recipe = prolong_data::recipe::Recipe::load(&root.join("prolong-64k.toml")).unwrap();
    let step = |name: &str| match &recipe.steps.iter().find(|s| s.name == name).unwrap().stage {
        prolong_data::stage::StepOptions::Tokenize(step) => step.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let group = step("tokenize-code").group_by_repo.clone().unwrap();
    assert_eq!(
        (group.repo.as_str(), group.path.as_str()),
        ("max_stars_repo_name", "max_stars_repo_path")
    );
    for (name, set) in [
        ("tokenize-book", "RedPajamaBook"),
        ("tokenize-stackexchange", "RedPajamaStackExchange"),
        ("tokenize-arxiv", "RedPajamaArXiv"),
    ] {
        let select = step(name).select.clone().unwrap();
        assert_eq!(select.field, "meta.redpajama_set_name");
        assert_eq!(select.values, [set]);
    }
}
