//! Feeds arbitrary bytes to the MDS shard decoder: header, offsets, column
//! sizes and every encoding. Any panic is a bug; errors are expected.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prolong_mds::fuzzing::decode_shard_input(data);
});
