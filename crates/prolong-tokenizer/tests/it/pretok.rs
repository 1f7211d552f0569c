//! The hand-written pre-tokenizers against Oniguruma, the regex engine the
//! tokenizers crate runs: every code point's class, every case-folded
//! contraction, and random texts, for the Llama-3, Qwen2 and GPT-2 regexes.

use onig::Regex;
use prolong_tokenizer::{CharClass, Pattern, PreTokenizer, char_class};

use crate::texts::{Rng, edge_cases, random_text};

const PATTERNS: [Pattern; 3] = [
    Pattern::Llama3 { max_digits: 3 },
    Pattern::Llama3 { max_digits: 1 },
    Pattern::Gpt2,
];

fn all_chars() -> impl Iterator<Item = char> {
    (0u32..=0x10ffff).filter_map(char::from_u32)
}

/// Asserts that the pre-tokenizer cuts `text` exactly where Oniguruma's
/// `find_iter` (as the tokenizers crate's Split / ByteLevel run it) does.
fn assert_same(pre: &PreTokenizer, re: &Regex, text: &str) {
    let want = re.find_iter(text);
    let mut got = pre.pieces(text).into_iter();
    let mut prev = 0;
    for (a, b) in want {
        // The regex tiles these texts; a gap would be its own piece.
        assert_eq!(
            a,
            prev,
            "{:?}: Oniguruma left a gap at {a} in {text:?}",
            pre.pattern()
        );
        let g = got.next();
        if g != Some((a, b)) {
            let from = a.saturating_sub(20);
            let from = (0..=from)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let to = (b + 20..=text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(text.len());
            panic!(
                "{:?}: at byte {a}: Oniguruma {:?}, ours {:?}; context {:?}",
                pre.pattern(),
                &text[a..b],
                g.map(|(x, y)| &text[x..y]),
                &text[from..to]
            );
        }
        prev = b;
    }
    assert_eq!(
        got.next(),
        None,
        "{:?}: extra pieces in {text:?}",
        pre.pattern()
    );
}

#[test]
fn char_classes_match_oniguruma_everywhere() {
    let classes = [
        (r"\s", CharClass::Space),
        (r"\p{L}", CharClass::Letter),
        (r"\p{N}", CharClass::Number),
    ];
    let all: String = all_chars().collect();
    let mut onig_class = vec![CharClass::Other; 0x110000];
    for (re, class) in classes {
        for (a, _) in Regex::new(re).unwrap().find_iter(&all) {
            let c = all[a..].chars().next().unwrap();
            assert_eq!(
                onig_class[c as usize],
                CharClass::Other,
                "{c:?} in two classes"
            );
            onig_class[c as usize] = class;
        }
    }
    let bad: Vec<String> = all_chars()
        .filter(|&c| char_class(c) != onig_class[c as usize])
        .map(|c| {
            format!(
                "U+{:04X} ours {:?} onig {:?}",
                c as u32,
                char_class(c),
                onig_class[c as usize]
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} chars differ: {:?}",
        bad.len(),
        &bad[..bad.len().min(20)]
    );
}

#[test]
fn contractions_match_oniguruma_for_every_char() {
    // Each char in every slot of every contraction, so that any char that
    // Oniguruma's case folding equates with a letter of `'s 't 're 've 'm
    // 'll 'd` shows up.
    let mut text = String::new();
    for c in all_chars() {
        for t in ["'{}", "'{}e", "'{}l", "'r{}", "'v{}", "'l{}"] {
            text.push_str(&t.replace("{}", c.encode_utf8(&mut [0; 4])));
            text.push('\n');
        }
    }
    for p in PATTERNS {
        assert_same(
            &PreTokenizer::new(p),
            &Regex::new(p.regex()).unwrap(),
            &text,
        );
    }
}

#[test]
fn random_texts_match_oniguruma() {
    for p in PATTERNS {
        let pre = PreTokenizer::new(p);
        let re = Regex::new(p.regex()).unwrap();
        for t in edge_cases() {
            assert_same(&pre, &re, &t);
        }
        let mut rng = Rng::new(7);
        for _ in 0..20_000 {
            assert_same(&pre, &re, &random_text(&mut rng, 24));
        }
    }
}

#[test]
fn split_points_do_not_change_pieces() {
    for p in PATTERNS {
        let pre = PreTokenizer::new(p);
        let mut rng = Rng::new(11);
        for _ in 0..5_000 {
            let text = random_text(&mut rng, 40);
            let whole = pre.pieces(&text);
            let mut from = 0;
            while let Some(cut) = pre.split_point(&text, from) {
                assert!(cut >= from && cut < text.len());
                let mut parts = pre.pieces(&text[..cut]);
                parts.extend(
                    pre.pieces(&text[cut..])
                        .into_iter()
                        .map(|(a, b)| (a + cut, b + cut)),
                );
                assert_eq!(parts, whole, "{p:?}: cut at {cut} of {text:?}");
                from = cut + 1;
            }
        }
    }
}
