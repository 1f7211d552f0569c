//! Bad input gives an error that names the file (and sample), never a panic.

use std::path::Path;

use crate::common::*;
use prolong_mds::{
    Index, MdsDataset, MdsError, MdsWriter, Value, WriterOptions, merge_index, read_shard_raw,
    verify,
};

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

fn edit_index(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("index.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut json);
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

/// Reads every sample; the first error, as text.
fn read_all(dir: &Path) -> String {
    let dataset = match MdsDataset::open(dir) {
        Ok(d) => d,
        Err(e) => return e.to_string(),
    };
    for i in 0..dataset.len() {
        let sample = match dataset.get(i) {
            Ok(s) => s,
            Err(e) => return e.to_string(),
        };
        if let Err(e) = sample.values() {
            return e.to_string();
        }
    }
    panic!("{} read without an error", dir.display())
}

#[test]
fn truncated_shard() {
    let copy = golden_copy("prolong-packed");
    let shard = copy.path().join("shard.00001.mds");
    edit(&shard, |b| b.truncate(b.len() - 10));
    let err = read_all(copy.path());
    assert_has(&err, &["shard.00001.mds", "bytes, index.json says"]);
    // With index.json edited to agree, the header's own checks catch it.
    let len = std::fs::metadata(&shard).unwrap().len();
    edit_index(copy.path(), |j| {
        j["shards"][1]["raw_data"]["bytes"] = len.into()
    });
    let err = read_all(copy.path());
    assert_has(&err, &["shard.00001.mds", "last offset"]);
    edit(&shard, |b| b.truncate(6));
    edit_index(copy.path(), |j| {
        j["shards"][1]["raw_data"]["bytes"] = 6.into();
        j["shards"][1]["samples"] = 0.into();
    });
    // No sample lies in a shard of 0 samples: verify opens it.
    let err = verify(copy.path()).unwrap_err().to_string();
    assert_has(&err, &["shard.00001.mds", "cannot hold"]);
}

#[test]
fn offsets_past_the_end_or_out_of_order() {
    let copy = golden_copy("prolong-packed");
    let shard = copy.path().join("shard.00000.mds");
    let original = std::fs::read(&shard).unwrap();
    // offsets[1] far past the end.
    edit(&shard, |b| {
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    let err = read_all(copy.path());
    assert_has(&err, &["shard.00000.mds", "offset"]);
    // offsets[2] before offsets[1].
    std::fs::write(&shard, &original).unwrap();
    edit(&shard, |b| b[12..16].copy_from_slice(&300u32.to_le_bytes()));
    let err = read_all(copy.path());
    assert_has(&err, &["shard.00000.mds", "before offset"]);
}

#[test]
fn wrong_hash() {
    let copy = golden_copy("zstd-hashed");
    edit_index(copy.path(), |j| {
        j["shards"][2]["zip_data"]["hashes"]["sha1"] = "00".repeat(20).into();
    });
    let err = verify(copy.path()).unwrap_err();
    assert!(matches!(err, MdsError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("shard.00002.mds.zstd"), "{err}");
}

/// Every reader and verify give the same one-line error for an index entry.
fn every_reader_fails(dir: &Path) -> String {
    let err = read_all(dir);
    let verify_err = verify(dir).unwrap_err().to_string();
    assert_eq!(err, verify_err);
    err
}

#[test]
fn absurd_sizes_in_index_json_are_refused_before_any_allocation() {
    // Each case: a golden dataset, an edit of its index.json, and what the
    // error every reader gives must hold.
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &[&str]); 5] = [
        // 2^60 raw bytes on a zstd shard aborted every reader ("memory
        // allocation of 1152921504606846976 bytes failed").
        (
            "zstd-hashed",
            |j| j["shards"][1]["raw_data"]["bytes"] = (1u64 << 60).into(),
            &[
                "index.json",
                "shard 1: raw_data.bytes 1152921504606846976 is more than",
            ],
        ),
        // A size the format allows but the data does not have: decompression
        // stops one byte past the data's real size.
        (
            "zstd-hashed",
            |j| j["shards"][1]["raw_data"]["bytes"] = u64::from(u32::MAX).into(),
            &[
                "shard.00001.mds.zstd: bad shard: decompresses to 25076 bytes, index.json says 4294967295",
            ],
        ),
        (
            "zstd-hashed",
            |j| j["shards"][1]["raw_data"]["bytes"] = 100.into(),
            &["decompresses to more than the 100 bytes index.json says"],
        ),
        // A sample count no shard of that size can hold.
        (
            "prolong-packed",
            |j| j["shards"][0]["samples"] = (1u64 << 40).into(),
            &["shard 0: samples 1099511627776 cannot fit in raw_data.bytes"],
        ),
        // A fixed-size column whose size overflows (it panicked in debug builds).
        (
            "sft-mask",
            |j| {
                j["shards"][0]["column_encodings"][0] =
                    "ndarray:uint64:4294967296,4294967296".into()
            },
            &["unknown encoding \"ndarray:uint64:4294967296,4294967296\""],
        ),
    ];
    for (golden, f, parts) in cases {
        let copy = golden_copy(golden);
        edit_index(copy.path(), f);
        assert_has(&every_reader_fails(copy.path()), parts);
    }
}

#[test]
fn every_reader_checks_the_recorded_hashes_once_per_shard() {
    // One flipped byte in a zip file whose size is unchanged.
    let copy = golden_copy("zstd-hashed");
    let zip = copy.path().join("shard.00002.mds.zstd");
    edit(&zip, |b| {
        let at = b.len() - 3;
        b[at] ^= 1;
    });
    let err = read_all(copy.path());
    assert_has(&err, &["shard.00002.mds.zstd: sha1 hash mismatch"]);
    let index = Index::load(copy.path()).unwrap();
    let mut buf: Vec<u8> = Vec::new();
    let err = read_shard_raw(copy.path(), &index.shards[2], &mut buf).unwrap_err();
    assert!(matches!(err, MdsError::HashMismatch { .. }), "{err}");
    // Shard 1 is sound and reads.
    read_shard_raw(copy.path(), &index.shards[1], &mut buf).unwrap();
    assert_eq!(buf.len() as u64, index.shards[1].raw_data.bytes);

    // A raw (cached) copy is checked against the raw file's hashes.
    let copy = golden_copy("zstd-hashed");
    let dataset = MdsDataset::open(copy.path()).unwrap();
    dataset.get(0).unwrap();
    drop(dataset);
    let raw = copy.path().join("shard.00000.mds");
    let data = std::fs::read(&raw).unwrap();
    // A letter of the domain text flipped to upper case: still valid UTF-8,
    // so only the hash can tell.
    let domain_at = data
        .windows(4)
        .position(|w| w.iter().all(u8::is_ascii_lowercase))
        .unwrap();
    edit(&raw, |b| b[domain_at] ^= 0x20);
    let err = read_all(copy.path());
    assert!(err.contains("shard.00000.mds: sha1 hash mismatch"), "{err}");
    let index = Index::load(copy.path()).unwrap();
    let err = read_shard_raw(copy.path(), &index.shards[0], &mut buf).unwrap_err();
    assert!(
        err.to_string()
            .contains("shard.00000.mds: sha1 hash mismatch"),
        "{err}"
    );
}

#[test]
fn sub_datasets_with_other_columns_are_not_merged_nor_verified() {
    let root = tempfile::tempdir().unwrap();
    for (sub, column) in [("a", "text"), ("b", "body")] {
        let mut w = MdsWriter::create(
            root.path().join(sub),
            &[(column, "str")],
            WriterOptions::default(),
        )
        .unwrap();
        w.write(&[(column, Value::Str("x".into()))]).unwrap();
        w.finish().unwrap();
    }
    // merge wrote a root of both, and verify passed it.
    let err = merge_index(root.path()).unwrap_err().to_string();
    assert!(
        err.ends_with("index.json: not an MDS index: shard 1 (b/shard.00000.mds) has columns body:str, shard 0 (a/shard.00000.mds) has text:str"),
        "{err}"
    );
    assert!(!root.path().join("index.json").exists());
    // The same root index written by hand.
    let mut shards = Vec::new();
    for sub in ["a", "b"] {
        let mut index = Index::load(&root.path().join(sub)).unwrap();
        index.shards[0].raw_data.basename = format!("{sub}/shard.00000.mds");
        shards.append(&mut index.shards);
    }
    let index = Index { shards, version: 2 };
    std::fs::write(root.path().join("index.json"), index.to_merged_json()).unwrap();
    let err = verify(root.path()).unwrap_err().to_string();
    assert_has(&err, &["shard 1 (b/shard.00000.mds) has columns body:str"]);
}

#[test]
fn unknown_encoding_and_extra_keys_and_non_index() {
    let copy = golden_copy("sft-mask");
    edit_index(copy.path(), |j| {
        j["shards"][0]["column_encodings"][0] = "pkl".into()
    });
    let err = read_all(copy.path());
    assert_has(&err, &["index.json", "unknown encoding \"pkl\""]);

    let copy = golden_copy("sft-mask");
    edit_index(copy.path(), |j| j["shards"][1]["extra"] = 1.into());
    let err = read_all(copy.path());
    assert_has(&err, &["index.json", "unknown field `extra`"]);

    let copy = golden_copy("sft-mask");
    std::fs::write(copy.path().join("index.json"), b"[1, 2, 3]").unwrap();
    let err = read_all(copy.path());
    assert_has(&err, &["index.json", "not an MDS index"]);

    let copy = golden_copy("sft-mask");
    edit_index(copy.path(), |j| {
        j["shards"][0]["raw_data"]["basename"] = "../../etc/passwd".into()
    });
    let err = read_all(copy.path());
    assert!(err.contains("leaves the dataset folder"), "{err}");
}

#[test]
fn invalid_utf8_in_a_str_column() {
    let copy = golden_copy("prolong-packed");
    let shard = copy.path().join("shard.00002.mds");
    let dataset = MdsDataset::open(copy.path()).unwrap();
    let (shard_index, local) = dataset.locate(7).unwrap();
    assert_eq!(shard_index, 2);
    let data = dataset.shard_bytes(2).unwrap();
    let domain = dataset.get(7).unwrap().str("domain").unwrap();
    let at = domain.as_ptr() as usize - data.as_ptr() as usize;
    drop(dataset);
    edit(&shard, |b| b[at] = 0xff);
    let dataset = MdsDataset::open(copy.path()).unwrap();
    let err = dataset
        .get(7)
        .unwrap()
        .get("domain")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shard.00002.mds")
            && err.contains(&format!("sample {local}"))
            && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn missing_shard_file() {
    let copy = golden_copy("merged");
    std::fs::remove_file(copy.path().join("proc01-02/shard.00000.mds")).unwrap();
    let err = read_all(copy.path());
    assert!(err.contains("proc01-02/shard.00000.mds"), "{err}");
    let err = verify(copy.path()).unwrap_err().to_string();
    assert!(err.contains("proc01-02/shard.00000.mds"), "{err}");
}

#[test]
fn missing_index() {
    let dir = tempfile::tempdir().unwrap();
    let err = MdsDataset::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("index.json"), "{err}");
}

#[test]
fn writer_rejects_what_streaming_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [("x", "ndarray:uint32")];
    let unsorted = WriterOptions::default().hashes(["xxh64", "sha1"]);
    assert!(matches!(
        MdsWriter::create(dir.path(), &cols, unsorted),
        Err(MdsError::InvalidSettings(_))
    ));
    let dup = WriterOptions::default().hashes(["sha1", "sha1"]);
    assert!(MdsWriter::create(dir.path(), &cols, dup).is_err());
    let big = WriterOptions::default().size_limit(1 << 32);
    assert!(MdsWriter::create(dir.path(), &cols, big).is_err());
    assert!(MdsWriter::create(dir.path(), &[("x", "pickle")], WriterOptions::default()).is_err());
    assert!(
        MdsWriter::create(
            dir.path(),
            &cols,
            WriterOptions::default().compression("gz")
        )
        .is_err()
    );

    let mut writer = MdsWriter::create(dir.path(), &cols, WriterOptions::default()).unwrap();
    let empty: [u32; 0] = [];
    let err = writer
        .write(&[("x", Value::Array(prolong_mds::Array::from_u32(&empty)))])
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = writer.write(&[]).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    // Nothing was finished: no index.json, so the folder does not look like a dataset.
    drop(writer);
    assert!(!dir.path().join("index.json").exists());
}

#[test]
fn writer_splits_shards_by_size_limit_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [
        ("domain", "str"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ];
    let options = WriterOptions::default()
        .size_limit(10_000)
        .compression("zstd:5")
        .hashes(["md5", "sha256", "xxh32"]);
    let mut writer = MdsWriter::create(dir.path(), &cols, options).unwrap();
    let docs: Vec<Vec<u32>> = (0..40u32)
        .map(|i| (0..(i * 37 % 900 + 1)).map(|t| t * 7 + i).collect())
        .collect();
    for doc in &docs {
        writer
            .write(&[
                ("length", Value::Int(doc.len() as i64)),
                ("input_ids", Value::Array(prolong_mds::Array::from_u32(doc))),
                ("domain", Value::Str(format!("d{}", doc.len() % 3).into())),
            ])
            .unwrap();
    }
    let index = writer.finish().unwrap();
    assert!(index.shards.len() > 3);
    for shard in &index.shards {
        // Every shard but one holding a single oversized sample stays within the limit.
        assert!(shard.raw_data.bytes <= 10_000 || shard.samples == 1);
    }
    verify(dir.path()).unwrap();
    let dataset = MdsDataset::open(dir.path()).unwrap();
    assert_eq!(dataset.len(), docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let sample = dataset.get(i).unwrap();
        assert_eq!(&*sample.u32s("input_ids").unwrap(), doc.as_slice());
        assert_eq!(sample.integer("length").unwrap(), doc.len() as i128);
    }
}
