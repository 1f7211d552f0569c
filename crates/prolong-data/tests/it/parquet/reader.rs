//! The Parquet reader: row order, ids, batches, and one error or skip per bad input.

use super::*;

/// The error opening `path` gives, which must name the file.
fn open_error(path: &Path, fields: &Fields) -> String {
    let err = match read_documents(path, fields) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&path.display().to_string()), "{err}");
    err
}

/// A fresh folder holding `fw.parquet`, the FineWeb-style file compressed with Snappy.
fn fineweb() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fw.parquet");
    write_fineweb(&path, Compression::SNAPPY);
    (tmp, path)
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
    let (_tmp, path) = fineweb();
    let err = open_error(&path, &fields("content", None));
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
    let (_tmp, path) = fineweb();
    let err = open_error(&path, &fields("token_count", None));
    assert!(
        err.contains("column \"token_count\" holds INT64, not strings"),
        "{err}"
    );
}

#[test]
fn a_truncated_or_foreign_file_is_one_error_naming_it() {
    let (tmp, path) = fineweb();
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
        assert!(err.contains("not a readable Parquet file"), "{err}");
    }
}

#[test]
fn corrupt_data_is_a_corrupt_stream_skip_at_the_row_reached() {
    let (_tmp, path) = fineweb();
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
    let (tmp, path) = fineweb();
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
