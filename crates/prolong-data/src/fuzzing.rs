//! The entry points of prolong-data's fuzz targets (fuzz/): `tokenizer_json`,
//! `jsonl_reader` and `mediawiki_reader`, shared with the test that replays
//! their corpora under `cargo test`. Each returns what it read or the error;
//! none may panic. Where two ways of computing one thing must agree, they
//! assert it, so that the fuzzer reports a disagreement as a bug.

use std::collections::BTreeMap;
use std::path::Path;

use crate::documents::jsonl::{JsonLines, JsonlRecords};
use crate::documents::mediawiki::MediaWikiPages;
use crate::documents::{Fields, GroupFields, Record, Select};
use crate::tokenize::Tokenizer;

/// The text every loaded tokenizer encodes (it starts with a space, so a
/// tokenizer that adds a prefix space gives it back unchanged).
const FIXED_TEXT: &str = " Hello, world! It's 2024: naïve café, 東京 🚀\n\tx  y";
/// How many bytes at the end of the input are encoded as text as well.
const INPUT_TEXT_BYTES: usize = 256;

/// What a loaded tokenizer did with the fixed text and a slice of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizerOutcome {
    pub fast: bool,
    pub vocab_size: usize,
    /// The ids of `FIXED_TEXT`.
    pub fixed_ids: Vec<u32>,
}

/// Loads `input` as a tokenizer.json ([`Tokenizer::from_bytes`]), then
/// encodes a fixed text and the input's last bytes as text, and decodes both.
/// On the fast path, every id must be below the vocabulary size, the long-
/// document encoder must give the same ids, and (without added tokens, which
/// decoding leaves out) decoding must give back the text.
pub fn tokenizer_json_input(input: &[u8]) -> Result<TokenizerOutcome, String> {
    let tok = Tokenizer::from_bytes(input).map_err(|e| e.to_string())?;
    let tail = String::from_utf8_lossy(&input[input.len().saturating_sub(INPUT_TEXT_BYTES)..]);
    let mut fixed_ids = Vec::new();
    for text in [FIXED_TEXT, &tail] {
        let ids = tok.encode(text).map_err(|e| e.to_string())?;
        let decoded = tok.decode(&ids).map_err(|e| e.to_string())?;
        if tok.is_fast() {
            let long = tok.encode_long_with(text, 16).map_err(|e| e.to_string())?;
            assert_eq!(ids, long, "encode_long cuts {text:?} where the ids change");
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= tok.vocab_size()) {
                panic!("id {id} of {text:?} is past the vocabulary");
            }
            if tok.added_tokens().is_empty() && text.starts_with(' ') {
                assert_eq!(decoded, text, "decode(encode(text)) differs");
            }
        }
        if fixed_ids.is_empty() {
            fixed_ids = ids;
        }
    }
    Ok(TokenizerOutcome {
        fast: tok.is_fast(),
        vocab_size: tok.vocab_size(),
        fixed_ids,
    })
}

/// Documents read and skips counted by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderOutcome {
    pub documents: u64,
    pub skipped: BTreeMap<&'static str, u64>,
}

impl ReaderOutcome {
    fn count(&mut self, record: &Record) {
        match record {
            Ok(_) => self.documents += 1,
            Err(s) => *self.skipped.entry(s.reason.name()).or_default() += 1,
        }
    }

    pub fn records(&self) -> u64 {
        self.documents + self.skipped.values().sum::<u64>()
    }
}

/// Reads `input` as a JSONL file the way `tokenize` and `filter` do (the
/// text in `text`), and again with an id field, a [`Select`] and
/// [`GroupFields`]. Every non-blank line must be one document or one counted
/// skip, whatever the fields, and the line numbers must rise; returns the
/// outcome of the plain read.
pub fn jsonl_input(input: &[u8]) -> ReaderOutcome {
    let path = Path::new("fuzz.jsonl");
    let lines = JsonLines::new(path, input).count() as u64;
    let variants = [
        Fields::default(),
        Fields {
            id: Some("id".into()),
            select: Some(Select {
                field: "meta.set".into(),
                values: vec!["a".into(), "b".into()],
            }),
            ..Fields::default()
        },
        Fields {
            group: Some(GroupFields {
                repo: "repo".into(),
                path: "path".into(),
            }),
            ..Fields::default()
        },
    ];
    let mut first = None;
    for fields in variants {
        let mut outcome = ReaderOutcome::default();
        let mut last_line = 0;
        for record in JsonlRecords::new(path, input, fields) {
            outcome.count(&record);
            let line = match &record {
                Ok(doc) => doc.file_of.as_ref().map_or(last_line + 1, |f| f.line),
                Err(s) => s.line,
            };
            assert!(line > last_line, "line {line} after line {last_line}");
            last_line = line;
        }
        assert_eq!(outcome.records(), lines, "records differ from lines");
        first.get_or_insert(outcome);
    }
    first.unwrap_or_default()
}

/// Reads `input` as a MediaWiki XML dump the way `tokenize` does: pages
/// emitted or counted by reason. A `malformed_xml` record ends the file, and
/// every record's line is within the file, pages in order.
pub fn mediawiki_input(input: &[u8]) -> ReaderOutcome {
    let path = Path::new("fuzz.xml");
    let lines = input.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let mut outcome = ReaderOutcome::default();
    let mut last_line = 0;
    let mut ended = false;
    for record in MediaWikiPages::new(path, input) {
        assert!(!ended, "a record after malformed_xml");
        outcome.count(&record);
        if let Err(s) = &record {
            assert!(
                (1..=lines).contains(&s.line) && s.line >= last_line,
                "{s} (last line {last_line}, {lines} lines)"
            );
            last_line = s.line;
            ended = s.reason == crate::documents::SkipReason::MalformedXml;
        }
    }
    outcome
}
