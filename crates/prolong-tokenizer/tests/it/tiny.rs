//! Small byte-level BPE tokenizers, trained here, in the tokenizer.json
//! variants the fast path models.

use std::collections::{BTreeMap, HashMap};

use prolong_tokenizer::pretok;
use serde_json::{Value, json};

use crate::texts::ENGLISH;

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
pub fn tiny_json(pre_tokenizer: Value, ignore_merges: bool, tuples: bool) -> (Value, u32) {
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

pub fn split_seq(regex: &str) -> Value {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
    ]})
}

pub fn byte_level_pre(add_prefix_space: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true, "use_regex": true})
}

/// (name, tokenizer.json) of every small fast-path tokenizer.
pub fn tiny_variants() -> Vec<(&'static str, Value)> {
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

pub fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}
