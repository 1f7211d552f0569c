//! Reads arbitrary bytes as a JSONL document file: every non-blank line is
//! one document or one counted skip. Any panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prolong_data::fuzzing::jsonl_input(data);
});
