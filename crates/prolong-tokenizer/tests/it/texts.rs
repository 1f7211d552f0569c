//! Shared by the tokenizer's tests: a seeded generator of
//! texts that stress pre-tokenizers, hand-picked edge cases, and fixtures.
#![allow(dead_code)]

use std::path::PathBuf;

use prolong_rng::SplitMix64;

/// The texts' draws: prolong-rng's SplitMix64, with `usize` bounds.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Fragments the random texts are made of: every class boundary the regexes
/// care about.
const FRAGMENTS: &[&str] = &[
    "a",
    "Z",
    "the",
    " the",
    "Hello",
    "é",
    "ß",
    "ſ",
    "İ",
    "ǅ",
    "日本",
    "中文",
    "한국어",
    "ÄÖÜ",
    "ﬁ",
    "K",
    "0",
    "7",
    "12",
    "123",
    "4567",
    "²",
    "½",
    "Ⅻ",
    "١٢",
    "৩",
    "𝟘",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\u{a0}",
    "\u{3000}",
    "\u{2028}",
    "\u{85}",
    "\u{2009}",
    "\u{b}",
    "\u{c}",
    "\u{1c}",
    "'",
    "''",
    "'s",
    "'S",
    "'t",
    "'T",
    "'re",
    "'RE",
    "'rE",
    "'ve",
    "'Ve",
    "'m",
    "'M",
    "'ll",
    "'LL",
    "'lL",
    "'d",
    "'D",
    "'ſ",
    "’s",
    "'x",
    ".",
    ",",
    "!",
    "?",
    "...",
    "--",
    "(",
    ")",
    "\"",
    "#",
    "$",
    "_",
    "@",
    "\\",
    "/",
    "<|",
    "|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "\u{301}",
    "\u{308}",
    "\u{200d}",
    "\u{fe0f}",
    "👍",
    "👍🏽",
    "👨\u{200d}👩\u{200d}👧",
    "🇺🇸",
    "\u{0}",
    "\u{7f}",
    "\u{ad}",
    "\u{feff}",
    "\u{e000}",
    "\u{10ffff}",
];

/// A random text of up to `max_parts` fragments or random code points.
pub fn random_text(rng: &mut Rng, max_parts: usize) -> String {
    let n = rng.below(max_parts + 1);
    let mut s = String::new();
    for _ in 0..n {
        match rng.below(10) {
            0 => {
                // Any scalar value, assigned or not.
                let c = loop {
                    let cp = match rng.below(3) {
                        0 => rng.below(0x800),
                        1 => rng.below(0x10000),
                        _ => rng.below(0x110000),
                    } as u32;
                    if let Some(c) = char::from_u32(cp) {
                        break c;
                    }
                };
                s.push(c);
            }
            1 => {
                // A run of one class.
                let frag = *rng.pick(&["a", " ", "\n", "1", ".", "'", "\t", "日"]);
                for _ in 0..rng.below(8) + 1 {
                    s.push_str(frag);
                }
            }
            _ => s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]),
        }
    }
    s
}

/// Hand-picked texts at the pre-tokenizer's and BPE's edges.
pub fn edge_cases() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "  ",
        "\n",
        "\r\n",
        "a",
        "Hello world",
        "Hello  world  ",
        "It's I'M they'RE we'VE you'LL he'D She'S don'T y'all 'tis",
        "'s 's' ''s ''' 'S'S",
        "'ſ 'ſt x'ſ",
        "日本語のテキスト、中文文本。한국어 텍스트",
        "👍🏽 👨\u{200d}👩\u{200d}👧\u{200d}👦 🇺🇸🇫🇷",
        "e\u{301}\u{301}a cafe\u{301} Z\u{324}\u{354}\u{367}\u{311}a\u{308}",
        "مرحبا بالعالم ١٢٣٤٥",
        "नमस्ते दुनिया",
        "1234567890 12 1,234.56 ²³ ⅫⅣ ١٢٣٤ 007",
        "\tindent\t\ttabs \t mixed",
        "a \t \n \r\n  \u{a0}\u{3000} b",
        "   \n\n\n   x",
        "end   ",
        "punct!!!\n\n",
        "?!...\r\n\r\nnext",
        " ?!\n x",
        "(foo) [bar] {baz} <qux>",
        "line1\nline2\r\nline3\rline4",
        "\u{2028}\u{2029}\u{85}x\u{85}",
        "<|end_of_text|>",
        "<|begin_of_text|>hi<|eot_id|> <|endoftext|>",
        "https://example.com/a_b?c=d&e=f#g",
        "fn main() {\n    println!(\"hi\");\n}\n",
        "\u{0}\u{1}\u{7f}\u{ad}",
        "aB3_cD4-eF5",
        "   leading",
        "\n\n\n",
        " \n \n ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(500));
    v.push("ab".repeat(300));
    v.push(" ".repeat(300) + "x");
    v.push("9".repeat(1000));
    v.push("-".repeat(500) + "\n");
    v.push("\n".repeat(200));
    v.push("😀".repeat(100));
    v.push("the quick brown fox ".repeat(50));
    v
}

/// Some English text, for training the small tokenizers and for long texts.
pub const ENGLISH: &str = "It was the best of times, it was the worst of times, it was the age of \
wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, \
it was the season of Light, it was the season of Darkness, it was the spring of hope, it was the \
winter of despair. We had everything before us, we had nothing before us; we were all going direct \
to Heaven, we were all going direct the other way.\n\nThere were a king with a large jaw and a queen \
with a plain face, on the throne of England; there were a king with a large jaw and a queen with a \
fair face, on the throne of France. In both countries it was clearer than crystal to the lords of the \
State preserves of loaves and fishes, that things in general were settled for ever.\n\n\
\"I don't know,\" she said, \"and I'll never know; you're right, we've 123 reasons and 4567 excuses.\"\n\
\tThe café served crème brûlée for 12.50€ — naïve, isn't it?\r\n";

/// fixtures/cache (or $PROLONG_FIXTURES).
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("PROLONG_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cache"),
    }
}

/// The Llama-3 tokenizer.json, or `None` after saying the test skips.
pub fn llama3_json(test: &str) -> Option<Vec<u8>> {
    let p = fixtures_dir().join("tokenizer.json");
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!(
                "SKIPPED {test}: {} is absent (run scripts/fetch-fixtures.sh)",
                p.display()
            );
            None
        }
    }
}

/// The fixture texts that are present: (name, text).
pub fn fixture_texts() -> Vec<(String, String)> {
    let dir = fixtures_dir();
    let mut paths = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("gutenberg")) {
        paths.extend(
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt")),
        );
    }
    paths.sort();
    paths.push(dir.join("kjv.txt"));
    paths.push(dir.join("enwiki.xml"));
    paths
        .into_iter()
        .filter_map(|p| {
            let b = std::fs::read(&p).ok()?;
            Some((
                p.file_name()?.to_string_lossy().into_owned(),
                String::from_utf8_lossy(&b).into_owned(),
            ))
        })
        .collect()
}
