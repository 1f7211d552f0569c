//! `prolong-data stats`: length histograms per domain of tokenized and
//! packed data, as a table, JSON and an SVG with one series per domain.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common;

use prolong_data::pack::{PackOptions, run_task};
use prolong_data::task::{LengthHistogram, TaskSpec};
use prolong_mds::{Array, MdsWriter, Value, WriterOptions};

/// A tokenized dataset: documents of the given (domain, length).
fn write_tokenized(dir: &Path, docs: &[(&str, usize)]) {
    let mut w = MdsWriter::create(
        dir,
        &prolong_packed::columns::TOKENIZED,
        WriterOptions::default(),
    )
    .unwrap();
    for (i, &(domain, len)) in docs.iter().enumerate() {
        let ids: Vec<u32> = (0..len).map(|k| (i + k) as u32 % 1000).collect();
        w.write(&[
            ("domain", Value::Str(domain.into())),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
            ("length", Value::Int(len as i64)),
        ])
        .unwrap();
    }
    w.finish().unwrap();
}

fn stats(dir: &Path, extra: &[&str]) -> std::process::Output {
    common::succeeded(
        Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("stats")
            .arg(dir)
            .args(extra)
            .output()
            .unwrap(),
    )
}

#[test]
fn tokenized_histograms_table_json_and_svg_match_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tok");
    let docs: Vec<(&str, usize)> = (0..60)
        .map(|i| {
            let domain = ["book", "code", "wiki"][i % 3];
            (domain, 1 + (i * i * 37) % 3000)
        })
        .collect();
    write_tokenized(&dir, &docs);
    let mut expected: BTreeMap<&str, LengthHistogram> = BTreeMap::new();
    for &(d, len) in &docs {
        expected.entry(d).or_default().add(len as u64);
    }

    let svg = tmp.path().join("out.svg");
    let out = stats(
        &dir,
        &["--plot", svg.to_str().unwrap(), "--y", "tokens", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let domains = json["domains"].as_object().unwrap();
    assert_eq!(domains.len(), 3);
    for (d, hist) in &expected {
        let got = &domains[*d];
        let buckets: LengthHistogram = LengthHistogram {
            buckets: serde_json::from_value(got["buckets"].clone()).unwrap(),
        };
        assert_eq!(&buckets, hist, "{d}");
        let docs_n: u64 = hist.buckets.iter().map(|b| b.documents).sum();
        assert_eq!(got["documents"], docs_n);
    }

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{text}");
    assert!(text.trim_end().ends_with("</svg>"));
    for d in ["book", "code", "wiki"] {
        assert_eq!(
            text.matches(&format!("class=\"series\" data-domain=\"{d}\""))
                .count(),
            1,
            "{d}"
        );
        assert!(text.contains(&format!(">{d}</text>")), "legend for {d}");
    }
    assert!(text.contains("document length in tokens"));
    assert!(text.contains(">tokens</text>"));

    // The table: one row per bucket with the same numbers, and a total per domain.
    let out = stats(&dir, &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    for (d, hist) in &expected {
        for b in &hist.buckets {
            let row = format!(
                "{:<34} {:>11} {:>11} {:>10} {:>14}",
                d, b.min, b.max, b.documents, b.tokens
            );
            assert!(table.contains(&row), "missing {row:?} in\n{table}");
        }
        let tokens: u64 = hist.buckets.iter().map(|b| b.tokens).sum();
        let row = format!(
            "{:<34} {:>11} {:>11} {:>10} {:>14}",
            d, "all", "", 20, tokens
        );
        assert!(table.contains(&row), "missing {row:?} in\n{table}");
    }
}

#[test]
fn packed_histograms_count_document_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = tmp.path().join("tok");
    let lengths = [10usize, 100, 30, 500, 7, 64];
    let docs: Vec<(&str, usize)> = lengths.iter().map(|&l| ("x", l)).collect();
    write_tokenized(&tok, &docs);
    let packed = tmp.path().join("packed");
    let options = PackOptions::new(128);
    run_task(
        &[tok],
        TaskSpec::new(0, 1).unwrap().at(&packed),
        &options,
        &mut |_| {},
    )
    .unwrap();
    // The pieces, from the indices themselves.
    let ds = prolong_mds::MdsDataset::open(&packed).unwrap();
    let mut expected = LengthHistogram::default();
    for i in 0..ds.len() {
        let idx = ds.get(i).unwrap().u32s("indices").unwrap().into_owned();
        for p in idx.chunks_exact(2) {
            expected.add(u64::from(p[1] - p[0]));
        }
    }
    let out = stats(&packed, &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let domains = json["domains"].as_object().unwrap();
    // Domain "." shows as the folder's name.
    assert_eq!(domains.keys().collect::<Vec<_>>(), vec!["packed"]);
    let got: LengthHistogram = LengthHistogram {
        buckets: serde_json::from_value(domains["packed"]["buckets"].clone()).unwrap(),
    };
    assert_eq!(got, expected);
    // Every sequence is 128 tokens: the pieces add up to the sequences' tokens.
    assert_eq!(
        domains["packed"]["tokens"].as_u64().unwrap(),
        128 * ds.len() as u64
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    write_tokenized(tmp.path(), &[("web", 10), ("books", 300)]);
    // A pipe whose reader is gone before the command starts, as in
    // `prolong-data stats DIR | (exit 0)`: the first print fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .arg("stats")
        .arg(tmp.path())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It panicked: status 101, "failed printing to stdout: Broken pipe".
    assert_eq!(
        out.status.code(),
        Some(prolong_mds::closed_stdout::CLOSED_STDOUT_EXIT),
        "{stderr}"
    );
    assert_eq!(stderr, "");
}

#[test]
fn columns_of_another_encoding_are_refused_by_stats_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, columns, expected) in [
        (
            "str_length",
            [
                ("domain", "str"),
                ("input_ids", "ndarray:uint32"),
                ("length", "str"),
            ],
            "column \"length\" is str, expected an integer",
        ),
        (
            "bytes_domain",
            [
                ("domain", "bytes"),
                ("input_ids", "ndarray:uint32"),
                ("length", "int"),
            ],
            "column \"domain\" is bytes, expected str",
        ),
        (
            "int64_ids",
            [
                ("domain", "str"),
                ("input_ids", "ndarray:int64"),
                ("length", "int"),
            ],
            "column \"input_ids\" is ndarray:int64, expected ndarray:uint32",
        ),
    ] {
        let dir = tmp.path().join(name);
        let mut w = MdsWriter::create(&dir, &columns, WriterOptions::default()).unwrap();
        let value = |enc: &str| match enc {
            "str" => Value::Str("7".into()),
            "bytes" => Value::Bytes(b"web".as_slice().into()),
            "int" => Value::Int(2),
            "ndarray:int64" => Value::Array(Array::from_i64(&[1, 2]).into_owned()),
            _ => Value::Array(Array::from_u32(&[1, 2]).into_owned()),
        };
        let sample: Vec<(&str, Value)> = columns.iter().map(|&(n, e)| (n, value(e))).collect();
        w.write(&sample).unwrap();
        w.finish().unwrap();
        for command in ["stats", "inspect"] {
            let out = Command::new(env!("CARGO_BIN_EXE_prolong-data"))
                .arg(command)
                .arg(&dir)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} {name}");
            assert!(
                stderr.contains("index.json") && stderr.contains(&format!("shard 0: {expected}")),
                "{command} {name}: {stderr}"
            );
        }
    }
    // A negative length wrapped to 18446744073709551615 tokens.
    let dir = tmp.path().join("negative");
    let mut w = MdsWriter::create(&dir, &[("length", "int")], WriterOptions::default()).unwrap();
    w.write(&[("length", Value::Int(-1))]).unwrap();
    w.finish().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .arg("inspect")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("column \"length\": -1 is not a length"),
        "{stderr}"
    );
}
