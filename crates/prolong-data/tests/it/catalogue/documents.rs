//! Malformed documents (JSONL, MediaWiki XML, Parquet) and tokenizer.json files.

use super::*;

/// The byte tokenizer as `dir/tokenizer.json` and `lines` as `dir/in.jsonl`.
fn jsonl(dir: &Path, lines: &[u8]) {
    common::write_byte_tokenizer(dir);
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
}

/// `dir/in.xml`: a MediaWiki dump holding `pages` (and the byte tokenizer).
fn wiki(dir: &Path, pages: &str) {
    common::write_byte_tokenizer(dir);
    let text = format!(
        "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\">\n\
         <siteinfo><sitename>W</sitename></siteinfo>\n{pages}"
    );
    std::fs::write(dir.join("in.xml"), text).unwrap();
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<page><title>{title}</title><ns>0</ns><id>1</id><revision><id>2</id><text xml:space=\"preserve\">{text}</text></revision></page>\n"
    )
}

/// `dir/in.parquet`: one row group of one REQUIRED column, `column` of
/// `kind` (BYTE_ARRAY strings or INT64), holding two rows.
#[cfg(feature = "parquet")]
fn parquet(dir: &Path, column: &str, strings: bool) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    common::write_byte_tokenizer(dir);
    let kind = if strings { "BYTE_ARRAY" } else { "INT64" };
    let schema = format!("message m {{ REQUIRED {kind} {column}; }}");
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema).unwrap());
    let file = std::fs::File::create(dir.join("in.parquet")).unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    if strings {
        let rows: Vec<ByteArray> = vec!["one".into(), "two".into()];
        col.typed::<ByteArrayType>()
            .write_batch(&rows, None, None)
            .unwrap();
    } else {
        col.typed::<Int64Type>()
            .write_batch(&[1, 2], None, None)
            .unwrap();
    }
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

/// The byte tokenizer's JSON with `f` applied, as `dir/tokenizer.json`, and
/// a one-line `dir/in.jsonl`.
fn tokenizer_edited(dir: &Path, f: impl FnOnce(&mut Value)) {
    let mut json: Value = serde_json::from_str(&common::byte_tokenizer_json()).unwrap();
    f(&mut json);
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
    std::fs::write(dir.join("in.jsonl"), "{\"text\": \"hi\"}\n").unwrap();
}

const TOKENIZE: &[&str] = &[
    "tokenize",
    "{dir}/in.jsonl",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];

const TOKENIZE_XML: &[&str] = &[
    "tokenize",
    "{dir}/in.xml",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];

const TOKENIZE_PARQUET: &[&str] = &[
    "tokenize",
    "{dir}/in.parquet",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];

const fn skips(counts: &'static [(&'static str, u64)]) -> Outcome {
    skipped("/skipped/by_reason", counts)
}

pub(super) const CASES: &[Case] = &[
    // JSONL documents (tokenize): bad records are counted and skipped.
    Case {
        name: "jsonl_malformed_line",
        build: |d| jsonl(d, b"{\"text\": \"a\"}\n{\"text\": \"b\n{\"text\": \"c\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("malformed_json", 1)]),
    },
    Case {
        name: "jsonl_bom_on_first_line_is_read",
        build: |d| jsonl(d, b"\xef\xbb\xbf{\"text\": \"a\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[]),
    },
    Case {
        name: "jsonl_invalid_utf8",
        build: |d| jsonl(d, b"{\"text\": \"caf\xe9\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("invalid_utf8", 1)]),
    },
    Case {
        name: "jsonl_huge_line_within_bounds",
        build: |d| {
            let line = format!("{{\"text\": \"{}\"}}\n", "ab".repeat(1 << 20));
            jsonl(d, line.as_bytes())
        },
        args: TOKENIZE,
        outcome: skips(&[]),
    },
    Case {
        name: "jsonl_non_object_line",
        build: |d| jsonl(d, b"[1, 2]\n\"text\"\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("malformed_json", 2)]),
    },
    Case {
        name: "jsonl_missing_text_field",
        build: |d| jsonl(d, b"{\"body\": \"a\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("missing_text_field", 1)]),
    },
    Case {
        name: "jsonl_text_not_a_string",
        build: |d| jsonl(d, b"{\"text\": 12}\n{\"text\": null}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("text_not_a_string", 2)]),
    },
    Case {
        name: "jsonl_gz_cut_short",
        build: |d| {
            use std::io::Write;
            common::write_byte_tokenizer(d);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for i in 0..2000 {
                writeln!(gz, "{{\"text\": \"document {i}\"}}").unwrap();
            }
            let bytes = gz.finish().unwrap();
            std::fs::write(d.join("in.jsonl.gz"), &bytes[..bytes.len() / 2]).unwrap();
        },
        args: &[
            "tokenize",
            "{dir}/in.jsonl.gz",
            "--out",
            "{dir}/out",
            "--tokenizer",
            "{dir}/tokenizer.json",
            "--json",
        ],
        outcome: skips(&[("corrupt_stream", 1)]),
    },
    // MediaWiki XML documents.
    Case {
        name: "xml_cut_inside_text",
        build: |d| {
            wiki(
                d,
                &format!(
                    "{}<page><title>B</title><ns>0</ns><id>3</id><revision><text>cut he",
                    page("A", "alpha")
                ),
            )
        },
        args: TOKENIZE_XML,
        outcome: skips(&[("truncated_page", 1)]),
    },
    Case {
        name: "xml_unclosed_text",
        build: |d| {
            wiki(
                d,
                &format!(
                    "<page><title>A</title><ns>0</ns><id>1</id><revision><text>never closed\n</revision></page>\n{}</mediawiki>\n",
                    page("B", "beta")
                ),
            )
        },
        args: TOKENIZE_XML,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.xml:4: malformed_xml (not well-formed XML at line 4, byte 177: ill-formed document: expected `</text>`, but `</revision>` was found)",
        ),
    },
    Case {
        name: "xml_malformed_file",
        build: |d| wiki(d, "<page><title>A</title></pag>\n</mediawiki>\n"),
        args: TOKENIZE_XML,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.xml:3: malformed_xml (not well-formed XML at line 3, byte 128: ill-formed document: expected `</page>`, but `</pag>` was found)",
        ),
    },
    // tokenizer.json.
    Case {
        name: "tokenizer_id_beyond_vocabulary",
        build: |d| tokenizer_edited(d, |j| j["model"]["vocab"]["zz"] = 4_000_000_000u64.into()),
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: token \"zz\" has id 4000000000, which leaves 3999999744 of the ids below it unused (the vocabulary and added tokens have 257; at most 65536 may be unused)",
        ),
    },
    Case {
        name: "tokenizer_duplicate_ids",
        build: |d| tokenizer_edited(d, |j| j["model"]["vocab"]["zz"] = 7.into()),
        args: TOKENIZE,
        outcome: Outcome::Error("{dir}/tokenizer.json: tokens \"zz\" and \"ć\" share id 7"),
    },
    Case {
        name: "tokenizer_not_json",
        build: |d| {
            std::fs::write(d.join("tokenizer.json"), "{\"model\": ").unwrap();
            std::fs::write(d.join("in.jsonl"), "{\"text\": \"hi\"}\n").unwrap();
        },
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: not valid JSON: EOF while parsing a value at line 1 column 10",
        ),
    },
    Case {
        name: "tokenizer_merge_of_unknown_tokens",
        build: |d| tokenizer_edited(d, |j| j["model"]["merges"] = json!(["h i"])),
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: merge 1 (\"h\" \"i\"): \"hi\" is not in the vocabulary",
        ),
    },
];

/// Parquet documents (the default `parquet` feature).
#[cfg(feature = "parquet")]
pub(super) const PARQUET_CASES: &[Case] = &[
    Case {
        name: "parquet_not_parquet",
        build: |d| {
            common::write_byte_tokenizer(d);
            std::fs::write(d.join("in.parquet"), "{\"text\": \"not parquet\"}\n").unwrap();
        },
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: not a readable Parquet file: Parquet error: Invalid Parquet file. Corrupt footer",
        ),
    },
    Case {
        name: "parquet_missing_column",
        build: |d| parquet(d, "body", true),
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: no column \"text\" (columns: body)",
        ),
    },
    Case {
        name: "parquet_text_column_of_integers",
        build: |d| parquet(d, "text", false),
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: column \"text\" holds INT64, not strings",
        ),
    },
];
#[cfg(not(feature = "parquet"))]
pub(super) const PARQUET_CASES: &[Case] = &[];
