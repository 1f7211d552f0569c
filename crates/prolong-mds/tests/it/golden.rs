//! The golden datasets written by mosaicml-streaming 0.13.0: our reader returns
//! exactly expected.json, and our writer, given the same samples and
//! arguments, writes byte-identical shards and index.json.

use crate::common::*;
use prolong_mds::{MdsDataset, MdsWriter, WriterOptions, merge_index};

#[test]
fn reader_returns_exactly_the_expected_samples() {
    for name in GOLDEN {
        let copy = golden_copy(name);
        let dataset = MdsDataset::open(copy.path()).unwrap();
        let expected = expected(name);
        assert_eq!(dataset.len(), expected.samples.len(), "{name}");
        for (i, want) in expected.samples.iter().enumerate() {
            let sample = dataset.get(i).unwrap();
            for (column, _) in &expected.columns {
                let got = to_expected(&sample.get(column).unwrap());
                assert_eq!(&got, &want[column], "{name} sample {i} column {column}");
            }
        }
        // Sequential iteration sees the same samples in the same order.
        assert_eq!(dataset.iter().count(), expected.samples.len());
    }
}

fn write_samples(
    dir: &std::path::Path,
    expected: &Expected,
    samples: &[serde_json::Value],
    options: WriterOptions,
) {
    let columns: Vec<(&str, &str)> = expected
        .columns
        .iter()
        .map(|(n, e)| (n.as_str(), e.as_str()))
        .collect();
    let mut writer = MdsWriter::create(dir, &columns, options).unwrap();
    for sample in samples {
        let values: Vec<(&str, prolong_mds::Value)> = expected
            .columns
            .iter()
            .map(|(n, e)| (n.as_str(), from_expected(e, &sample[n])))
            .collect();
        writer.write(&values).unwrap();
    }
    writer.finish().unwrap();
}

fn options(args: &serde_json::Value) -> WriterOptions {
    let mut options = WriterOptions::default();
    if let Some(c) = args.get("compression").and_then(|c| c.as_str()) {
        options = options.compression(c);
    }
    if let Some(h) = args.get("hashes").and_then(|h| h.as_array()) {
        options = options.hashes(h.iter().map(|h| h.as_str().unwrap().to_string()));
    }
    if let Some(s) = args.get("size_limit").and_then(|s| s.as_u64()) {
        options = options.size_limit(s);
    }
    options
}

#[test]
fn writer_is_byte_identical_to_streaming() {
    for name in ["prolong-packed", "zstd-hashed", "sft-mask", "encodings"] {
        let expected = expected(name);
        let out = tempfile::tempdir().unwrap();
        write_samples(
            out.path(),
            &expected,
            &expected.samples,
            options(&expected.writer_args),
        );
        let (ours, theirs) = (files(out.path()), files(&golden_dir(name)));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (file, bytes) in &theirs {
            assert!(ours[file] == *bytes, "{name}/{file} differs");
        }
    }
}

#[test]
fn merged_root_is_byte_identical_to_merge_index() {
    let expected = expected("merged");
    let out = tempfile::tempdir().unwrap();
    let (first, second) = expected.samples.split_at(4);
    for (sub, samples) in [("proc00-02", first), ("proc01-02", second)] {
        write_samples(
            &out.path().join(sub),
            &expected,
            samples,
            WriterOptions::default().size_limit(4096),
        );
    }
    merge_index(out.path()).unwrap();
    let (ours, theirs) = (files(out.path()), files(&golden_dir("merged")));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (file, bytes) in &theirs {
        assert!(ours[file] == *bytes, "merged/{file} differs");
    }
}

#[test]
fn racing_readers_share_one_decompressed_cache() {
    let copy = golden_copy("zstd-hashed");
    let expected = expected("zstd-hashed");
    // Each thread opens its own dataset, as separate processes would, and
    // every one of them decompresses and caches the same shards at once.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let dataset = MdsDataset::open(copy.path()).unwrap();
                for (i, want) in expected.samples.iter().enumerate() {
                    let got = to_expected(&dataset.get(i).unwrap().get("input_ids").unwrap());
                    assert_eq!(got, want["input_ids"]);
                }
            });
        }
    });
    let names: Vec<String> = files(copy.path()).into_keys().collect();
    assert!(names.contains(&"shard.00002.mds".to_string()), "{names:?}");
    assert!(
        names.iter().all(|n| !n.contains(".tmp.")),
        "temporary files left: {names:?}"
    );
    prolong_mds::verify(copy.path()).unwrap();
}
