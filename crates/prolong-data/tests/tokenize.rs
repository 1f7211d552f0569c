//! The fast tokenizer against the tokenizers crate (the reference, configured
//! by `reference_tokenizer`): identical ids on small byte-level BPE
//! tokenizers built here (no fixtures needed) and on Llama-3's when
//! fixtures/cache/tokenizer.json is present; edge cases, random texts (the
//! fuzzing), fixture texts; `encode_long` and `encode_batch` against `encode`;
//! the fallback for other tokenizers.

#[path = "tokenize_gen.rs"]
mod tokenize_gen;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use prolong_data::tokenize::{Tokenizer, pretok, reference_tokenizer};
use serde_json::{Value, json};
use tokenize_gen::{ENGLISH, Rng, edge_cases, fixture_texts, llama3_json, random_text};

// ---------------------------------------------------------------------------
// Small byte-level BPE tokenizers, trained here.

/// GPT-2's byte -> char map (written out again here, independently).
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
    if printable(b) {
        return b as char;
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

fn byte_level(s: &str) -> Vec<String> {
    s.bytes().map(|b| byte_char(b).to_string()).collect()
}

/// A few hundred merges learned from `corpus` (split before spaces and
/// newlines), plus merges that make an existing token from another pair.
fn train(corpus: &str, n_merges: usize) -> Vec<(String, String)> {
    let mut words: HashMap<Vec<String>, usize> = HashMap::new();
    let mut start = 0;
    for (i, c) in corpus.char_indices() {
        if (c == ' ' || c == '\n') && i > start {
            *words.entry(byte_level(&corpus[start..i])).or_default() += 1;
            start = i;
        }
    }
    *words.entry(byte_level(&corpus[start..])).or_default() += 1;
    let mut merges = Vec::new();
    for _ in 0..n_merges {
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (w, n) in &words {
            for p in w.windows(2) {
                *counts.entry((p[0].clone(), p[1].clone())).or_default() += n;
            }
        }
        let Some((best, n)) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        if n < 2 {
            break;
        }
        let joined = format!("{}{}", best.0, best.1);
        words = words
            .into_iter()
            .map(|(w, n)| {
                let mut out: Vec<String> = Vec::with_capacity(w.len());
                for s in w {
                    if out.last() == Some(&best.0) && s == best.1 {
                        out.pop();
                        out.push(joined.clone());
                    } else {
                        out.push(s);
                    }
                }
                (out, n)
            })
            .collect();
        merges.push(best);
    }
    // Other pairs that make a token already made: same result, other rank.
    let tokens: std::collections::HashSet<String> =
        merges.iter().map(|(a, b)| format!("{a}{b}")).collect();
    let mut extra = Vec::new();
    for (a, b) in &merges {
        let t = format!("{a}{b}");
        for (i, _) in t.char_indices().skip(1) {
            let (c, d) = t.split_at(i);
            let known = |s: &str| s.chars().count() == 1 || tokens.contains(s);
            if c != a && known(c) && known(d) && extra.len() < 40 {
                extra.push((c.to_string(), d.to_string()));
            }
        }
    }
    merges.extend(extra);
    merges
}

/// A tokenizer.json: byte-level BPE trained on [`ENGLISH`] with the given
/// pre-tokenizer; `tuples` writes merges as pairs rather than "a b".
fn tiny_json(pre_tokenizer: Value, ignore_merges: bool, tuples: bool) -> (Value, u32) {
    let merges = train(&(ENGLISH.repeat(3) + "日本語のテキスト 12345 'LL 'S"), 400);
    let mut vocab: BTreeMap<String, u32> = BTreeMap::new();
    // Byte tokens under permuted ids.
    for b in 0..=255u8 {
        vocab.insert(byte_char(b).to_string(), (b as u32 * 167 + 13) % 256);
    }
    let mut next = 256;
    let mut add = |vocab: &mut BTreeMap<String, u32>, t: String| {
        if let std::collections::btree_map::Entry::Vacant(e) = vocab.entry(t) {
            e.insert(next);
            next += 1;
        }
    };
    for (a, b) in &merges {
        add(&mut vocab, format!("{a}{b}"));
    }
    // Whole words that no merge makes (only `ignore_merges` finds them).
    for w in [
        " best of",
        "Heaven",
        " times,",
        "123",
        "4567",
        "'LL",
        "ſ",
        " the quick",
    ] {
        add(&mut vocab, byte_level(w).concat());
    }
    let special = next;
    let merges: Vec<Value> = merges
        .iter()
        .map(|(a, b)| {
            if tuples {
                json!([a, b])
            } else {
                json!(format!("{a} {b}"))
            }
        })
        .collect();
    let v = json!({
        "version": "1.0",
        // The reference must ignore this.
        "truncation": {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0},
        "padding": null,
        "added_tokens": [{"id": special, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        // With add_special_tokens = false this adds nothing.
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [special], "tokens": ["<|endoftext|>"]}}
        },
        "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges}
    });
    (v, special)
}

fn split_seq(regex: &str) -> Value {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
    ]})
}

fn byte_level_pre(add_prefix_space: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true, "use_regex": true})
}

/// (name, tokenizer.json) of every small fast-path tokenizer.
fn tiny_variants() -> Vec<(&'static str, Value)> {
    vec![
        (
            "llama3 ignore_merges",
            tiny_json(split_seq(pretok::LLAMA3_REGEX), true, false).0,
        ),
        (
            "llama3",
            tiny_json(split_seq(pretok::LLAMA3_REGEX), false, true).0,
        ),
        (
            "qwen2",
            tiny_json(split_seq(pretok::QWEN2_REGEX), false, false).0,
        ),
        (
            "gpt2 split",
            tiny_json(split_seq(pretok::GPT2_REGEX), true, true).0,
        ),
        (
            "gpt2 byte-level",
            tiny_json(byte_level_pre(false), false, false).0,
        ),
        (
            "gpt2 byte-level prefix space",
            tiny_json(byte_level_pre(true), false, true).0,
        ),
    ]
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

// ---------------------------------------------------------------------------

fn reference_ids(r: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
    r.encode_fast(text, false).unwrap().get_ids().to_vec()
}

/// Asserts identical ids, showing the first difference.
fn assert_ids(name: &str, text: &str, got: &[u32], want: &[u32]) {
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
fn check_identity(name: &str, tok: &Tokenizer, r: &tokenizers::Tokenizer, randoms: usize) {
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
fn big_text(bytes: usize) -> String {
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

// ---------------------------------------------------------------------------
// Llama-3 (fixtures/cache/tokenizer.json).

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

#[test]
fn vocabulary_ids_far_beyond_its_size_or_duplicate_are_refused_by_token() {
    let (v, _) = tiny_json(split_seq(pretok::LLAMA3_REGEX), false, false);
    let n = Tokenizer::from_bytes(&bytes(&v)).unwrap().vocab_size();
    let load = |f: &dyn Fn(&mut Value)| {
        let mut v = v.clone();
        f(&mut v);
        Tokenizer::from_bytes(&bytes(&v)).unwrap_err().to_string()
    };
    // An id of 4,000,000,000 made the loader allocate 32 GB and abort.
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(4_000_000_000u64));
    assert_eq!(
        e,
        format!(
            "tokenizer.json: token \"Heaven\" has id 4000000000, which leaves {} of the ids \
             below it unused (the vocabulary and added tokens have {n}; at most 65536 may be unused)",
            4_000_000_001 - n
        )
    );
    // From a file, the error names it.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tok.json");
    let mut bad = v.clone();
    bad["model"]["vocab"]["Heaven"] = json!(4_000_000_000u64);
    std::fs::write(&file, bytes(&bad)).unwrap();
    let e = Tokenizer::from_file(&file).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: token \"Heaven\" has id 4000000000",
            file.display()
        )),
        "{e}"
    );
    // Holes within the bound are what tokenizer.json allows (reserved ids).
    let reserved = Tokenizer::from_bytes(&bytes(&{
        let mut v = v.clone();
        v["added_tokens"][0]["id"] = json!(n + 1000);
        v
    }))
    .unwrap();
    assert_eq!(reserved.vocab_size(), n + 1001);
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(1u64 << 40));
    assert_eq!(
        e,
        "tokenizer.json: vocabulary token \"Heaven\" has id 1099511627776, not an integer below 2^32"
    );
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(-1));
    assert!(e.contains("\"Heaven\" has id -1, not an integer"), "{e}");
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(7));
    assert!(e.contains("share id 7") && e.contains("\"Heaven\""), "{e}");
    // An added token reusing a vocabulary id under another text.
    let e = load(&|v| v["added_tokens"][0]["id"] = json!(7));
    assert!(e.contains("share id 7"), "{e}");
    let e = load(&|v| v["added_tokens"][0]["id"] = json!(n as u64 + 70_000));
    assert!(
        e.contains(&format!(
            // Its own old id (the last) is unused too.
            "\"<|endoftext|>\" has id {}, which leaves 70001 of the ids",
            n + 70_000
        )),
        "{e}"
    );
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
