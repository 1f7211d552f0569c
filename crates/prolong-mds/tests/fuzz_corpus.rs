//! Replays the cargo-fuzz corpus of the shard decoder (fuzz/corpus/) under
//! `cargo test`: no input may panic, and the seeds cut from golden shards
//! decode in full.

use std::path::Path;

use prolong_mds::fuzzing::decode_shard_input;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/shard_decoder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "corpus is missing from {}", dir.display());
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| decode_shard_input(&input));
        let result = result.unwrap_or_else(|_| panic!("{} panics the decoder", path.display()));
        let name = path.file_name().unwrap().to_string_lossy();
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
