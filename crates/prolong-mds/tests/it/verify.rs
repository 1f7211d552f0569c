//! `verify` passes on every golden dataset and catches a single flipped byte in
//! each: anywhere in a hashed shard, and in every structural part (count,
//! offsets, config, column sizes, headers, strings, array shapes) of an unhashed
//! one. The meaning of ProLong's columns (indices, length, mask) is not the
//! format's: prolong-packed's rule checks those, through `verify_with`.

use std::path::Path;

use crate::common::*;
use prolong_mds::{Index, MdsDataset, ShardHeader, split_sample, verify};

#[test]
fn every_golden_dataset_verifies() {
    for name in GOLDEN {
        let copy = golden_copy(name);
        let report = verify(copy.path()).unwrap();
        assert_eq!(
            report.samples as usize,
            expected(name).samples.len(),
            "{name}"
        );
        assert_eq!(
            report.shards,
            Index::load(copy.path()).unwrap().shards.len()
        );
    }
}

/// (file relative to the dataset, byte position, xor mask) to try.
fn flips(dir: &Path) -> Vec<(String, usize, u8)> {
    let index = Index::load(dir).unwrap();
    let dataset = MdsDataset::open(dir).unwrap();
    let mut out = Vec::new();
    for (s, entry) in index.shards.iter().enumerate() {
        if let Some(zip) = &entry.zip_data {
            // Hashed (every compressed golden shard is): any byte of the file.
            let len = zip.bytes as usize;
            for pos in [0, 1, len / 3, len / 2, len - 2, len - 1] {
                out.push((zip.basename.clone(), pos, 0x01));
            }
            continue;
        }
        let file = entry.raw_data.basename.clone();
        let data = dataset.shard_bytes(s).unwrap();
        let header = ShardHeader::parse(data).unwrap();
        let n = header.samples;
        out.push((file.clone(), 0, 0x01)); // sample count
        for k in 0..=n {
            out.push((file.clone(), 4 + 4 * k, 0x01)); // offsets
        }
        let config_start = 4 + 4 * (n + 1);
        out.push((file.clone(), config_start + 3, 0x01));
        let columns = entry.columns().unwrap();
        for i in 0..n {
            let sample = header.sample(data, i);
            let base = sample.as_ptr() as usize - data.as_ptr() as usize;
            out.push((file.clone(), base + 2, 0x01)); // first column size
            let fields = split_sample(&columns, sample).unwrap();
            for (column, field) in columns.iter().zip(fields) {
                let at = field.as_ptr() as usize - data.as_ptr() as usize;
                match (column.name.as_str(), column.encoding.to_string().as_str()) {
                    (_, "str") => out.push((file.clone(), at, 0x80)),
                    ("indices", _) => out.push((file.clone(), at, 0x01)), // shape header
                    ("input_ids", _) => out.push((file.clone(), at, 0x01)),
                    _ => {}
                }
            }
        }
    }
    out
}

#[test]
fn a_single_flipped_byte_is_caught_in_every_golden_dataset() {
    for name in GOLDEN {
        let pristine = golden_copy(name);
        let positions = flips(pristine.path());
        assert!(positions.len() > 5, "{name}");
        for (file, pos, xor) in positions {
            let copy = golden_copy(name);
            let path = copy.path().join(&file);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[pos] ^= xor;
            std::fs::write(&path, &bytes).unwrap();
            let err = verify(copy.path())
                .expect_err(&format!("{name}/{file}: flip at {pos} went unnoticed"));
            let shard_stem = Path::new(&file).file_name().unwrap().to_string_lossy();
            let raw_stem = shard_stem.trim_end_matches(".zstd");
            assert!(
                err.to_string().contains(raw_stem),
                "{name}/{file} at {pos}: error does not name the shard: {err}"
            );
        }
    }
}

#[test]
fn verify_rejects_a_stale_decompressed_cache() {
    let copy = golden_copy("zstd-hashed");
    // Reading caches shard.00000.mds beside the .zstd file.
    MdsDataset::open(copy.path()).unwrap().get(0).unwrap();
    let cache = copy.path().join("shard.00000.mds");
    let mut bytes = std::fs::read(&cache).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&cache, &bytes).unwrap();
    let err = verify(copy.path()).unwrap_err().to_string();
    assert_has(&err, &["shard.00000.mds", "cached"]);
}
