//! The fast path's ids equal the reference's on the tiny tokenizers: every
//! tokenizer.json variant, special tokens in the text, long documents cut
//! into pieces, batches, and the fallback for tokenizers it does not model.

use prolong_tokenizer::{Tokenizer, pretok, reference_tokenizer};
use serde_json::json;

use crate::texts::{ENGLISH, Rng, edge_cases, llama3_json, random_text};
use crate::tiny::{byte_level_pre, bytes, split_seq, tiny_json, tiny_variants};

pub fn reference_ids(r: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
    r.encode_fast(text, false).unwrap().get_ids().to_vec()
}

/// Asserts identical ids, showing the first difference.
pub fn assert_ids(name: &str, text: &str, got: &[u32], want: &[u32]) {
    if got != want {
        let i = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let short: String = text.chars().take(200).collect();
        panic!(
            "{name}: ids differ at {i} (ours {} ids, reference {}): ours {:?} reference {:?}; text {short:?}",
            got.len(),
            want.len(),
            &got[i.saturating_sub(3)..(i + 5).min(got.len())],
            &want[i.saturating_sub(3)..(i + 5).min(want.len())],
        );
    }
}

/// Edge cases, random texts and a long text: ours == reference.
pub fn check_identity(name: &str, tok: &Tokenizer, r: &tokenizers::Tokenizer, randoms: usize) {
    let mut enc = tok.encoder();
    for t in edge_cases().iter().chain([ENGLISH.to_string()].iter()) {
        assert_ids(name, t, &enc.encode(t).unwrap(), &reference_ids(r, t));
    }
    let mut rng = Rng::new(42);
    for _ in 0..randoms {
        let t = random_text(&mut rng, 30);
        assert_ids(name, &t, &enc.encode(&t).unwrap(), &reference_ids(r, &t));
    }
}

#[test]
fn tiny_tokenizers_are_identical_to_the_reference() {
    for (name, v) in tiny_variants() {
        let json = bytes(&v);
        let tok = Tokenizer::from_bytes(&json).unwrap();
        assert!(tok.is_fast(), "{name}: {:?}", tok.fallback_reason());
        let r = reference_tokenizer(&json).unwrap();
        check_identity(name, &tok, &r, 3_000);
    }
}

#[test]
fn tiny_tokenizers_really_use_bpe_merges() {
    // Guards the identity test against a degenerate vocabulary.
    let (v, _) = tiny_json(split_seq(pretok::LLAMA3_REGEX), false, false);
    let tok = Tokenizer::from_bytes(&bytes(&v)).unwrap();
    let ids = tok.encode(ENGLISH).unwrap();
    assert!(
        ids.len() * 2 < ENGLISH.len(),
        "{} ids for {} bytes",
        ids.len(),
        ENGLISH.len()
    );
    assert!(ids.iter().any(|&i| i >= 256));
}

#[test]
fn special_tokens_in_text_are_plain_text() {
    let (v, special) = tiny_json(split_seq(pretok::LLAMA3_REGEX), true, false);
    let json = bytes(&v);
    let tok = Tokenizer::from_bytes(&json).unwrap();
    let text = "a<|endoftext|>b";
    let ids = tok.encode(text).unwrap();
    assert!(!ids.contains(&special), "{ids:?}");
    assert_eq!(
        ids,
        reference_ids(&reference_tokenizer(&json).unwrap(), text)
    );
    // The tokenizers crate's default would have matched it.
    let default = tokenizers::Tokenizer::from_bytes(&json).unwrap();
    assert!(
        default
            .encode_fast(text, false)
            .unwrap()
            .get_ids()
            .contains(&special)
    );
    assert_eq!(tok.added_token_id("<|endoftext|>"), Some(special));
}

#[test]
fn other_tokenizers_fall_back_to_the_reference() {
    let (base, _) = tiny_json(split_seq(pretok::LLAMA3_REGEX), true, false);
    let mut nfc = base.clone();
    nfc["normalizer"] = json!({"type": "NFC"});
    let mut added = base.clone();
    added["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 5000, "content": "quux", "single_word": false,
        "lstrip": false, "rstrip": false, "normalized": false, "special": false}));
    let mut other_regex = base.clone();
    other_regex["pre_tokenizer"] = split_seq(r"\p{L}+|\s+|[^\s\p{L}]+");
    let mut dropout = base;
    dropout["model"]["dropout"] = json!(0.5);
    for (name, v, why) in [
        ("nfc", nfc, "normalizer"),
        ("added", added, "added token"),
        ("regex", other_regex, "split pattern"),
        ("dropout", dropout, "dropout"),
    ] {
        let json = bytes(&v);
        let tok = Tokenizer::from_bytes(&json).unwrap();
        assert!(!tok.is_fast(), "{name}");
        assert!(
            tok.fallback_reason().unwrap().contains(why),
            "{name}: {:?}",
            tok.fallback_reason()
        );
        if name == "dropout" {
            continue; // not deterministic
        }
        let r = reference_tokenizer(&json).unwrap();
        check_identity(name, &tok, &r, 200);
        let doc = ENGLISH.repeat(20) + " quux café";
        assert_eq!(
            tok.encode_long(&doc).unwrap(),
            reference_ids(&r, &doc),
            "{name}"
        );
    }
}

/// A multi-megabyte text with many newlines, from `ENGLISH` and random texts.
pub fn big_text(bytes: usize) -> String {
    let mut rng = Rng::new(5);
    let mut s = String::with_capacity(bytes + 10_000);
    while s.len() < bytes {
        s.push_str(ENGLISH);
        s.push_str(&random_text(&mut rng, 40));
        s.push_str(["\n", "\n\n", " \n", "\r\n", "\n  ", ""][rng.below(6)]);
    }
    s
}

#[test]
fn encode_long_equals_encode_on_tiny_tokenizers() {
    let text = big_text(1 << 20);
    for (name, v) in tiny_variants() {
        let json = bytes(&v);
        let tok = Tokenizer::from_bytes(&json).unwrap();
        let whole = tok.encode(&text).unwrap();
        for chunk in [1_000, 50_000] {
            let cuts = tok.long_cuts(&text, chunk).unwrap();
            assert!(cuts.len() > 10, "{name}: only {} cuts", cuts.len());
            assert_ids(
                name,
                &text,
                &tok.encode_long_with(&text, chunk).unwrap(),
                &whole,
            );
        }
        assert_ids(name, &text, &tok.encode_long(&text).unwrap(), &whole);
        let r = reference_tokenizer(&json).unwrap();
        assert_ids(name, &text, &whole, &reference_ids(&r, &text));
    }
}

/// About `bytes` bytes of letters and no white space: one pre-token for
/// every pattern. Runs of random letters of several scripts, and runs of one
/// letter (long chains of the same merges).
fn letters_only(bytes: usize) -> String {
    const LETTERS: [char; 14] = [
        'a', 'e', 's', 't', 'n', 'Q', 'z', 'é', 'ß', 'ж', 'λ', '日', '本', 'ñ',
    ];
    let mut rng = Rng::new(11);
    let mut s = String::with_capacity(bytes + 400);
    while s.len() < bytes {
        let run = 1 + rng.below(300);
        if rng.below(4) == 0 {
            let c = *rng.pick(&LETTERS);
            s.extend(std::iter::repeat_n(c, run));
        } else {
            s.extend((0..run).map(|_| *rng.pick(&LETTERS)));
        }
    }
    s
}

/// A whole document without white space is one pre-token: merged rank by
/// rank (a heap over tens of millions of pairs took minutes), same ids.
#[test]
fn a_long_piece_without_white_space_is_identical_to_the_reference() {
    let text = letters_only(200 << 10);
    let mut tokenizers: Vec<(String, Tokenizer, tokenizers::Tokenizer)> = tiny_variants()
        .into_iter()
        .map(|(name, v)| {
            let json = bytes(&v);
            (
                name.to_string(),
                Tokenizer::from_bytes(&json).unwrap(),
                reference_tokenizer(&json).unwrap(),
            )
        })
        .collect();
    if let Some(json) =
        llama3_json("a_long_piece_without_white_space_is_identical_to_the_reference")
    {
        tokenizers.push((
            "llama3 (fixture)".into(),
            Tokenizer::from_bytes(&json).unwrap(),
            reference_tokenizer(&json).unwrap(),
        ));
    }
    for (name, tok, reference) in &tokenizers {
        let pieces = tok.pre_tokenizer().unwrap().pieces(&text).len();
        assert_eq!(pieces, 1, "{name}");
        let ids = tok.encode(&text).unwrap();
        assert_ids(name, &text, &ids, &reference_ids(reference, &text));
        assert_ids(name, &text, &tok.encode_long(&text).unwrap(), &ids);
    }
}

#[test]
fn encode_batch_equals_encode() {
    let (v, _) = tiny_json(byte_level_pre(true), false, false);
    let tok = Tokenizer::from_bytes(&bytes(&v)).unwrap();
    let texts = edge_cases();
    let batch = tok.encode_batch(&texts).unwrap();
    for (t, ids) in texts.iter().zip(&batch) {
        assert_eq!(ids, &tok.encode(t).unwrap(), "{t:?}");
    }
}

#[test]
fn thread_local_caches_keep_tokenizers_apart() {
    // Same thread, two tokenizers with different vocabularies, interleaved:
    // each must keep its own cached pieces.
    let a = Tokenizer::from_bytes(&bytes(
        &tiny_json(split_seq(pretok::LLAMA3_REGEX), true, false).0,
    ))
    .unwrap();
    let (mut v, _) = tiny_json(split_seq(pretok::LLAMA3_REGEX), true, false);
    v["model"]["merges"] = json!([]);
    let b = Tokenizer::from_bytes(&bytes(&v)).unwrap();
    let texts = edge_cases();
    for _ in 0..2 {
        for t in &texts {
            assert_eq!(
                a.encode(t).unwrap(),
                a.encoder().encode(t).unwrap(),
                "{t:?}"
            );
            assert_eq!(
                b.encode(t).unwrap(),
                b.encoder().encode(t).unwrap(),
                "{t:?}"
            );
        }
    }
    assert_ne!(a.encode(ENGLISH).unwrap(), b.encode(ENGLISH).unwrap());
}
