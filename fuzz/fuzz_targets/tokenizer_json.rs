//! Loads arbitrary bytes as a tokenizer.json with prolong-data's tokenizer
//! (the fast byte-level BPE path, else the tokenizers crate), then encodes
//! and decodes a fixed text and the input's tail. Any panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prolong_data::fuzzing::tokenizer_json_input(data);
});
