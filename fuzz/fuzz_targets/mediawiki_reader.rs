//! Reads arbitrary bytes as a MediaWiki XML dump: every page is emitted or
//! counted by reason. Any panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prolong_data::fuzzing::mediawiki_input(data);
});
