//! Malformed MDS datasets: index.json, shards and samples.

use super::*;

/// `dir/ds`, a copy of the golden dataset `name` with index.json edited by `f`.
fn golden_edited(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) {
    golden(dir, name);
    let path = dir.join("ds/index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut index);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

const VERIFY: &[&str] = &["verify", "{dir}/ds"];

const INSPECT: &[&str] = &["inspect", "{dir}/ds"];

pub(super) const CASES: &[Case] = &[
    // MDS: index.json.
    Case {
        name: "mds_index_not_json",
        build: |d| {
            golden(d, "prolong-packed");
            std::fs::write(d.join("ds/index.json"), "{\"shards\": [").unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: EOF while parsing a list at line 1 column 12",
        ),
    },
    Case {
        name: "mds_index_bad_version",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["version"] = 3.into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: version 3 (only 2 is supported)",
        ),
    },
    Case {
        name: "mds_index_missing_samples",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][1].as_object_mut().unwrap().remove("samples");
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: missing field `samples` at line 1 column 664",
        ),
    },
    Case {
        name: "mds_raw_bytes_2_pow_60",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                j["shards"][1]["raw_data"]["bytes"] = (1u64 << 60).into()
            })
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "open {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 1: raw_data.bytes 1152921504606846976 is more than the 4294967295 bytes a shard's 32-bit offsets address",
        ),
    },
    Case {
        name: "mds_samples_2_pow_40",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["samples"] = (1u64 << 40).into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: samples 1099511627776 cannot fit in raw_data.bytes 12840",
        ),
    },
    Case {
        name: "mds_shard_shorter_than_header",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][2]["raw_data"]["bytes"] = 2.into();
                j["shards"][2]["samples"] = 0.into();
            });
            let shard = d.join("ds/shard.00002.mds");
            let bytes = std::fs::read(&shard).unwrap();
            std::fs::write(&shard, &bytes[..2]).unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/shard.00002.mds: bad shard: shorter than its 4-byte sample count",
        ),
    },
    Case {
        name: "mds_shard_cut_short",
        build: |d| {
            golden(d, "prolong-packed");
            let shard = d.join("ds/shard.00001.mds");
            let bytes = std::fs::read(&shard).unwrap();
            std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "{dir}/ds/shard.00001.mds: bad shard: 12846 bytes, index.json says 12856",
        ),
    },
    Case {
        name: "mds_wrong_hash",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                j["shards"][2]["zip_data"]["hashes"]["sha1"] = "00".repeat(20).into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/shard.00002.mds.zstd: sha1 hash mismatch: index.json says 0000000000000000000000000000000000000000, file has b141d75f8574805674a81261b5e2ea5cc1a6a720",
        ),
    },
    Case {
        name: "mds_unknown_column_encoding",
        build: |d| {
            golden_edited(d, "sft-mask", |j| {
                j["shards"][0]["column_encodings"][0] =
                    "ndarray:uint64:4294967296,4294967296".into()
            })
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "open {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: column \"domain\": unknown encoding \"ndarray:uint64:4294967296,4294967296\"",
        ),
    },
    Case {
        name: "mds_input_ids_encoded_as_str",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                for shard in j["shards"].as_array_mut().unwrap() {
                    let names = shard["column_names"].clone();
                    let at = names
                        .as_array()
                        .unwrap()
                        .iter()
                        .position(|n| n == "input_ids")
                        .unwrap();
                    shard["column_encodings"][at] = "str".into();
                }
            })
        },
        args: &["stats", "{dir}/ds"],
        outcome: Outcome::Error(
            "{dir}/ds/index.json: not an MDS index: shard 0: column \"input_ids\" is str, expected ndarray:uint32",
        ),
    },
    Case {
        name: "mds_zstd_garbage",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                // Without hashes, the zstd decoder itself meets the garbage.
                for shard in j["shards"].as_array_mut().unwrap() {
                    shard["hashes"] = json!([]);
                    shard["raw_data"]["hashes"] = json!({});
                    shard["zip_data"]["hashes"] = json!({});
                }
            });
            let zip = d.join("ds/shard.00000.mds.zstd");
            let len = std::fs::metadata(&zip).unwrap().len() as usize;
            std::fs::write(&zip, vec![0x5a; len]).unwrap();
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "{dir}/ds/shard.00000.mds.zstd: bad shard: zstd: Unknown frame descriptor",
        ),
    },
    Case {
        name: "mds_basename_outside_the_folder",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["raw_data"]["basename"] = "../shard.00000.mds".into()
            });
            std::fs::copy(d.join("ds/shard.00000.mds"), d.join("shard.00000.mds")).unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: basename \"../shard.00000.mds\" leaves the dataset folder",
        ),
    },
];
