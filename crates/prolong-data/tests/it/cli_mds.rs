//! The MDS commands of the CLI: inspect, verify and merge on the golden datasets.

use std::path::{Path, PathBuf};

use crate::common;

use crate::common::run_cli as run;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/mds-golden")
        .join(name)
}

#[test]
fn inspect_counts_tokens_and_documents_per_domain() {
    let dir = golden("prolong-packed");
    let (ok, out, err) = run(&["inspect", dir.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["shards"], 4);
    assert_eq!(json["summary"]["total"]["samples"], 12);
    assert_eq!(json["summary"]["total"]["tokens"], 12 * 1024);
    // The golden expected.json has the indices: count document pieces there.
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let pieces: u64 = expected["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["indices"]["shape"][0].as_u64().unwrap())
        .sum();
    assert_eq!(json["summary"]["total"]["documents"], pieces);
    assert_eq!(json["columns"]["input_ids"], "ndarray:uint32");
}

#[test]
fn inspect_prints_one_sample() {
    let (ok, out, err) = run(&[
        "inspect",
        golden("sft-mask").to_str().unwrap(),
        "--sample",
        "4",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("mask: uint8"), "{out}");
    let (ok, _, err) = run(&[
        "inspect",
        golden("sft-mask").to_str().unwrap(),
        "--sample",
        "5",
    ]);
    assert!(!ok);
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn inspect_refuses_ids_outside_the_tokenizers_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let tokenizer = common::write_byte_tokenizer(tmp.path());
    let dir = golden("sft-mask");
    let dataset = prolong_mds::MdsDataset::open(&dir).unwrap();
    let ids = dataset
        .get(0)
        .unwrap()
        .u32s("input_ids")
        .unwrap()
        .into_owned();
    let (at, id) = ids.iter().enumerate().find(|&(_, &id)| id > 255).unwrap();
    // The decoded text used to come out with those tokens silently missing.
    let (ok, _, err) = run(&[
        "inspect",
        dir.to_str().unwrap(),
        "--sample",
        "0",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "sample 0: input_ids[{at}] = {id} is not in the vocabulary of {} (256 ids)",
            tokenizer.display()
        )),
        "{err}"
    );
}

#[test]
fn inspect_and_stats_write_nothing_beside_a_compressed_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&golden("zstd-hashed"), tmp.path());
    let before = common::files(tmp.path());
    assert!(before.keys().all(|name| !name.ends_with(".mds")));
    let dir = tmp.path().to_str().unwrap();
    // inspect used to leave a decompressed copy of every shard beside it.
    for args in [
        vec!["inspect", dir],
        vec!["inspect", dir, "--sample", "4"],
        vec!["stats", dir],
    ] {
        let (ok, _, err) = run(&args);
        assert!(ok, "{args:?}: {err}");
        assert_eq!(common::files(tmp.path()), before, "{args:?}");
    }
}

#[test]
fn verify_passes_then_fails_naming_the_shard() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&golden("zstd-hashed"), tmp.path());
    let (ok, out, _) = run(&["verify", tmp.path().to_str().unwrap()]);
    assert!(ok && out.contains("9 samples"), "{out}");
    let shard = tmp.path().join("shard.00001.mds.zstd");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    let (ok, _, err) = run(&["verify", tmp.path().to_str().unwrap()]);
    assert!(!ok);
    common::assert_error_line(&err, &["shard.00001.mds.zstd", "hash mismatch"]);
}

#[test]
fn merge_rebuilds_the_root_index() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&golden("merged"), tmp.path());
    let original = std::fs::read(tmp.path().join("index.json")).unwrap();
    std::fs::remove_file(tmp.path().join("index.json")).unwrap();
    let (ok, out, err) = run(&["merge", tmp.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("4 shards, 8 samples"), "{out}");
    assert_eq!(
        std::fs::read(tmp.path().join("index.json")).unwrap(),
        original
    );
}
