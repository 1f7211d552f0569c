//! Replays the cargo-fuzz corpora of prolong-mds (fuzz/corpus/shard_decoder
//! and fuzz/corpus/dataset_open) under `cargo test`: no input may panic, the
//! seeds taken whole from golden data decode in full, the cut ones fail.

use std::path::PathBuf;

use prolong_mds::fuzzing::{
    corpus_files, decode_shard_input, join_dataset_input, open_dataset_input, split_dataset_input,
};

/// Every file of fuzz/corpus/`target` with its name, at least `at_least` of them.
fn corpus(target: &str, at_least: usize) -> Vec<(String, Vec<u8>)> {
    let files = corpus_files(target).unwrap();
    assert!(files.len() >= at_least, "the {target} corpus is missing");
    files
}

#[test]
fn fuzz_corpus_replays_without_panics() {
    for (name, input) in corpus("shard_decoder", 6) {
        let result = std::panic::catch_unwind(|| decode_shard_input(&input));
        let result = result.unwrap_or_else(|_| panic!("{name} panics the decoder"));
        // The seeds taken whole from golden shards must decode; the cut ones must not.
        match name.as_ref() {
            "packed-0" => assert_eq!(result, Ok(3)),
            "merged-1" => assert_eq!(result, Ok(1)),
            "encodings-0" => assert_eq!(result, Ok(6)),
            "packed-truncated" | "header-only" => assert!(result.is_err(), "{name}"),
            _ => {}
        }
    }
}

#[test]
fn dataset_open_corpus_replays_without_panics() {
    let mut named = 0;
    for (name, input) in corpus("dataset_open", 12) {
        let result = std::panic::catch_unwind(|| open_dataset_input(&input));
        let result = result.unwrap_or_else(|_| panic!("{name} panics a dataset reader"));
        // Golden datasets read in full, every sample; the broken ones fail
        // with the error that names what is wrong.
        let expected: Result<usize, &str> = match name.as_ref() {
            "encodings" => Ok(6),
            "merged" => Ok(8),
            "prolong-packed" => Ok(12),
            "sft-mask" => Ok(5),
            "zstd-hashed" => Ok(9),
            "merged-shard-cut" => {
                Err("proc01-02/shard.00001.mds: bad shard: 1338 bytes, index.json says 1348")
            }
            "merged-index-only" => Err("proc00-02/shard.00000.mds: No such file"),
            "sft-mask-index-cut" => Err("index.json: not an MDS index: EOF while parsing"),
            "encodings-absurd-bytes" => Err("raw_data.bytes 1152921504606846976 is more than"),
            "encodings-escaping-basename" => Err("leaves the dataset folder"),
            // A mask value of 2 is well-formed MDS: the 0/1 rule is prolong-packed's
            // (checked by `prolong-data verify` and the trainer's loader), not the format's.
            "sft-mask-flipped-byte" => Ok(5),
            "bad-name" => Err("file name \"../index.json\" is not a relative path"),
            _ => continue,
        };
        named += 1;
        match (&result, expected) {
            (Ok(n), Ok(want)) => assert_eq!(*n, want, "{name}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{name}: {e}"),
            _ => panic!("{name}: {result:?}, expected {expected:?}"),
        }
    }
    assert_eq!(named, 12, "a named seed is missing from the corpus");
}

#[test]
fn dataset_input_framing_round_trips_and_bounds_names() {
    let parts: [(&str, &[u8]); 2] = [("index.json", b"{}"), ("a/shard.00000.mds", b"xyz")];
    let joined = join_dataset_input(&parts);
    let split = split_dataset_input(&joined).unwrap();
    assert_eq!(split.len(), 2);
    assert_eq!(split[1], (PathBuf::from("a/shard.00000.mds"), &b"xyz"[..]));
    // A length past the end takes what is left.
    let cut = split_dataset_input(&joined[..joined.len() - 1]).unwrap();
    assert_eq!(cut[1].1, b"xy");
    for bad in ["/etc/passwd", "a/../../x", "a/b/c/d"] {
        let input = join_dataset_input(&[(bad, b"")]);
        assert!(split_dataset_input(&input).is_err(), "{bad}");
    }
    let many = join_dataset_input(&[("f", &b""[..]); 17]);
    assert!(
        split_dataset_input(&many)
            .unwrap_err()
            .contains("more than 16")
    );
}
