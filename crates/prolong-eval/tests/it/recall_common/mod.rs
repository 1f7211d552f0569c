//! Shared by the recall tests: fixtures, a byte-level tokenizer, a little prose.
#![allow(dead_code)]

use std::sync::OnceLock;

use prolong_eval::recall::Prose;
use prolong_tokenizer::Tokenizer;

/// Ids of the byte tokenizer's special tokens.
pub const BOS: u32 = 300;
pub const EOS: u32 = 301;

/// The Llama-3 tokenizer and the KJV, loaded once.
pub fn llama3(test: &str) -> Option<&'static (Tokenizer, Prose)> {
    static LOADED: OnceLock<Option<(Tokenizer, Prose)>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        let tok = fixture("tokenizer.json", test)?;
        let kjv = fixture("kjv.txt", test)?;
        Some((
            Tokenizer::from_file(tok).unwrap(),
            Prose::from_file(&kjv).unwrap(),
        ))
    });
    if loaded.is_none() {
        eprintln!("skipped {test}: Llama-3 tokenizer or KJV missing");
    }
    loaded.as_ref()
}

/// A byte-level tokenizer.json with the 256 byte tokens, a few merges (so units are
/// not all the same size) and two special tokens ([`BOS`], [`EOS`]): small, exact,
/// no fixture. Its vocabulary size is 302.
pub fn byte_tokenizer_json() -> String {
    let mut vocab: serde_json::Map<String, serde_json::Value> = (0..=255u8)
        .map(|b| (byte_char(b).to_string(), serde_json::Value::from(b as u32)))
        .collect();
    let merges: Vec<(String, String)> = [
        ("t", "h"),
        ("th", "e"),
        ("Ġ", "the"),
        ("o", "n"),
        ("e", "s"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .into();
    for (i, (a, b)) in merges.iter().enumerate() {
        vocab.insert(format!("{a}{b}"), serde_json::Value::from(256 + i as u32));
    }
    let pre_tokenizer = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    bpe_tokenizer_json(vocab, &merges, (BOS, EOS), pre_tokenizer)
}

/// A byte-level BPE tokenizer.json: `vocab` (token → id), `merges` in rank order,
/// `<|begin_of_text|>` and `<|end_of_text|>` with the ids `bos` and `eos`, and
/// `pre_tokenizer` (tokenizer.json's object).
pub fn bpe_tokenizer_json(
    vocab: serde_json::Map<String, serde_json::Value>,
    merges: &[(String, String)],
    (bos, eos): (u32, u32),
    pre_tokenizer: serde_json::Value,
) -> String {
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "special": true, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false})
    };
    serde_json::json!({
        "version": "1.0",
        "added_tokens": [special(bos, "<|begin_of_text|>"), special(eos, "<|end_of_text|>")],
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()
        }
    })
    .to_string()
}

/// [`byte_tokenizer_json`] loaded once.
pub fn byte_tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let tok = Tokenizer::from_bytes(byte_tokenizer_json().as_bytes()).unwrap();
        assert!(tok.is_fast());
        tok
    })
}

/// Public-domain prose (short sentences) for the multi-value haystack.
pub const SMALL_PROSE: &str = "It was the best of times. It was the worst of times. \
    Call me Ishmael. I thought I would sail about a little. \
    Happy families are all alike! Every unhappy family is unhappy in its own way. \
    Who is there? Nay, answer me: stand, and unfold yourself.";

/// [`SMALL_PROSE`] as a haystack, loaded once.
pub fn small_prose() -> &'static Prose {
    static PROSE: OnceLock<Prose> = OnceLock::new();
    PROSE.get_or_init(|| Prose::from_text(SMALL_PROSE, "small prose").unwrap())
}

/// `byte_char`, `fixture`, `sorted_names` and `succeeded`, one file with
/// prolong-data's tests.
#[path = "../../../../prolong-data/tests/it/common/shared.rs"]
mod shared;
pub use shared::{byte_char, fixture, sorted_names, succeeded};

/// The catalogue of malformed inputs (one file, shared with the other crates' catalogues).
#[path = "../../../../prolong-data/tests/it/common/catalogue.rs"]
pub mod catalogue;
