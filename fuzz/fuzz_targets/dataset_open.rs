//! Writes arbitrary bytes out as a dataset folder (an index.json and shard
//! files, framed as `prolong_mds::fuzzing::split_dataset_input` says) and
//! reads it the way verify, inspect, filter and the trainer do. Any panic
//! is a bug; errors are expected.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prolong_mds::fuzzing::open_dataset_input(data);
});
