//! Llama-3's tokenizer (fixtures/cache/tokenizer.json; the tests are skipped
//! without it): identical ids on edge cases, random and fixture texts, and a
//! big text cut for `encode_long`.

use std::sync::OnceLock;

use prolong_tokenizer::{Tokenizer, reference_tokenizer};

use crate::identity::{assert_ids, big_text, check_identity, reference_ids};
use crate::texts::{fixture_texts, llama3_json};

struct Llama3 {
    fast: Tokenizer,
    reference: tokenizers::Tokenizer,
}

fn llama3(test: &str) -> Option<&'static Llama3> {
    static L: OnceLock<Option<Llama3>> = OnceLock::new();
    let l = L.get_or_init(|| {
        let json = llama3_json(test)?;
        Some(Llama3 {
            fast: Tokenizer::from_bytes(&json).unwrap(),
            reference: reference_tokenizer(&json).unwrap(),
        })
    });
    if l.is_none() {
        eprintln!("SKIPPED {test}: no Llama-3 tokenizer.json");
    }
    l.as_ref()
}

#[test]
fn llama3_is_identical_on_edge_cases_and_random_texts() {
    let Some(l) = llama3("llama3_is_identical_on_edge_cases_and_random_texts") else {
        return;
    };
    assert!(l.fast.is_fast(), "{:?}", l.fast.fallback_reason());
    assert_eq!(l.fast.vocab_size(), 128_256);
    check_identity("llama3", &l.fast, &l.reference, 5_000);
}

#[test]
fn llama3_is_identical_on_fixture_texts() {
    let Some(l) = llama3("llama3_is_identical_on_fixture_texts") else {
        return;
    };
    let texts = fixture_texts();
    if texts.is_empty() {
        eprintln!(
            "SKIPPED llama3_is_identical_on_fixture_texts: no fixture texts in fixtures/cache"
        );
    }
    for (name, text) in &texts {
        let ids = l.fast.encode(text).unwrap();
        assert_ids(name, text, &ids, &reference_ids(&l.reference, text));
        eprintln!("{name}: {} bytes, {} ids, identical", text.len(), ids.len());
    }
}

#[test]
fn llama3_special_tokens_are_plain_text() {
    let Some(l) = llama3("llama3_special_tokens_are_plain_text") else {
        return;
    };
    let eot = l.fast.added_token_id("<|end_of_text|>").unwrap();
    assert_eq!(eot, 128_001);
    let text = "The end.<|end_of_text|><|begin_of_text|>";
    let ids = l.fast.encode(text).unwrap();
    assert!(ids.iter().all(|&i| i < 128_000), "{ids:?}");
    assert_eq!(ids, reference_ids(&l.reference, text));
    assert_eq!(l.fast.encode("Hello world").unwrap(), [9906, 1917]);
}

#[test]
fn llama3_encode_long_equals_encode_on_a_big_text() {
    let Some(l) = llama3("llama3_encode_long_equals_encode_on_a_big_text") else {
        return;
    };
    let text = fixture_texts()
        .into_iter()
        .find(|(n, _)| n == "kjv.txt")
        .map(|(_, t)| t)
        .unwrap_or_else(|| {
            eprintln!(
                "llama3_encode_long_equals_encode_on_a_big_text: no kjv.txt, using a generated text"
            );
            big_text(4 << 20)
        });
    let whole = l.fast.encode(&text).unwrap();
    for chunk in [10_000, 1 << 20] {
        assert!(l.fast.long_cuts(&text, chunk).unwrap().len() > 3);
        assert_ids(
            "llama3 long",
            &text,
            &l.fast.encode_long_with(&text, chunk).unwrap(),
            &whole,
        );
    }
    assert_ids(
        "llama3 long",
        &text,
        &l.fast.encode_long(&text).unwrap(),
        &whole,
    );
}
