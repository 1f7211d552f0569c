//! Hand-written pre-tokenizers: state machines over chars that return exactly
//! the matches the tokenizers crate's Oniguruma regex finds (leftmost match,
//! alternatives tried in order, then the next search starts where the match
//! ended) for the two regex families used by byte-level BPE tokenizers.
//!
//! Char classes are Oniguruma's: `\s` is the Unicode White_Space property
//! (Oniguruma's `CR_Space`), `\p{L}` / `\p{N}` the general categories L* / N*.
//! Both Oniguruma 6.9.10 (bundled by `onig_sys`) and `unicode-general-category`
//! 1.1 carry Unicode 16.0; a test checks every code point against Oniguruma.

mod class;

use class::{ASCII, LETTER, NUMBER, OTHER, SPACE, bmp_table, class_at};
pub use class::{CharClass, char_class};

/// Which regex a pre-tokenizer reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Llama-3 (`max_digits` 3):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
    /// Qwen2 is the same with `\p{N}` (`max_digits` 1).
    Llama3 { max_digits: u8 },
    /// GPT-2 (the ByteLevel pre-tokenizer's own regex):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
}

/// The regex strings, exactly as they appear in tokenizer.json.
pub const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's variant of [`LLAMA3_REGEX`]: one digit per pre-token.
pub const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2's regex (also the one built into the ByteLevel pre-tokenizer).
pub const GPT2_REGEX: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

impl Pattern {
    /// The pattern whose regex string is `re`, if we have a state machine for it.
    pub fn from_regex(re: &str) -> Option<Pattern> {
        match re {
            LLAMA3_REGEX => Some(Pattern::Llama3 { max_digits: 3 }),
            QWEN2_REGEX => Some(Pattern::Llama3 { max_digits: 1 }),
            GPT2_REGEX => Some(Pattern::Gpt2),
            _ => None,
        }
    }

    /// The regex string this pattern reproduces.
    pub fn regex(self) -> &'static str {
        match self {
            Pattern::Llama3 { max_digits: 1 } => QWEN2_REGEX,
            Pattern::Llama3 { .. } => LLAMA3_REGEX,
            Pattern::Gpt2 => GPT2_REGEX,
        }
    }
}

#[inline(always)]
fn is_newline(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// A pre-tokenizer for one [`Pattern`]; cheap to copy, shareable.
#[derive(Clone, Copy)]
pub struct PreTokenizer {
    pattern: Pattern,
    bmp: &'static [u8],
}

impl std::fmt::Debug for PreTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreTokenizer")
            .field("pattern", &self.pattern)
            .finish()
    }
}

impl PreTokenizer {
    pub fn new(pattern: Pattern) -> Self {
        PreTokenizer {
            pattern,
            bmp: bmp_table(),
        }
    }

    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    #[inline(always)]
    fn class(&self, s: &[u8], i: usize) -> (u8, usize) {
        class_at(self.bmp, s, i)
    }

    /// End of the run of chars of class `class` that starts at `j`.
    #[inline(always)]
    fn run_end(&self, s: &[u8], mut j: usize, class: u8) -> usize {
        while j < s.len() {
            let b = s[j];
            if b < 0x80 {
                if ASCII[b as usize] != class {
                    break;
                }
                j += 1;
            } else {
                let (c, l) = self.class(s, j);
                if c != class {
                    break;
                }
                j += l;
            }
        }
        j
    }

    #[inline(always)]
    fn newlines_end(s: &[u8], mut j: usize) -> usize {
        while j < s.len() && is_newline(s[j]) {
            j += 1;
        }
        j
    }

    /// Calls `f(start, end)` for every pre-token of `text`, in order; the
    /// pieces tile the text.
    #[inline]
    pub fn for_each(&self, text: &str, mut f: impl FnMut(usize, usize)) {
        let s = text.as_bytes();
        let mut i = 0;
        while i < s.len() {
            let e = self.next_end(s, i);
            f(i, e);
            i = e;
        }
    }

    /// All pre-tokens of `text` as byte ranges.
    pub fn pieces(&self, text: &str) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        self.for_each(text, |a, b| v.push((a, b)));
        v
    }

    /// The end of the pre-token that starts at byte `i` (< `s.len()`, on a
    /// char boundary).
    #[inline]
    pub fn next_end(&self, s: &[u8], i: usize) -> usize {
        // Both patterns try the contractions first: `(?i:'s|'t|'re|'ve|'m|'ll|'d)`
        // in Llama-3's (case folded), `'s|'t|'re|'ve|'m|'ll|'d` in GPT-2's.
        if s[i] == b'\''
            && let Some(l) = match self.pattern {
                Pattern::Llama3 { .. } => contraction_ci(s, i + 1),
                Pattern::Gpt2 => contraction_cs(s, i + 1),
            }
        {
            return i + 1 + l;
        }
        match self.pattern {
            Pattern::Llama3 { max_digits } => self.next_llama3(s, i, max_digits),
            Pattern::Gpt2 => self.next_gpt2(s, i),
        }
    }

    /// Llama-3's pattern past its contractions.
    #[inline(always)]
    fn next_llama3(&self, s: &[u8], i: usize, max_digits: u8) -> usize {
        let n = s.len();
        let b0 = s[i];
        let (c0, l0) = self.class(s, i);
        let j = i + l0;
        match c0 {
            // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part empty.
            LETTER => self.run_end(s, j, LETTER),
            // \p{N}{1,max_digits}
            NUMBER => {
                let mut j = j;
                let mut k = 1;
                while k < max_digits && j < n {
                    let (c, l) = self.class(s, j);
                    if c != NUMBER {
                        break;
                    }
                    j += l;
                    k += 1;
                }
                j
            }
            OTHER => {
                // [^\r\n\p{L}\p{N}]?\p{L}+ with c0 as the optional char.
                if j < n {
                    let (c1, l1) = self.class(s, j);
                    if c1 == LETTER {
                        return self.run_end(s, j + l1, LETTER);
                    }
                }
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*` without the space.
                Self::newlines_end(s, self.run_end(s, j, OTHER))
            }
            _ => {
                if j < n {
                    let (c1, l1) = self.class(s, j);
                    // [^\r\n\p{L}\p{N}]?\p{L}+ with a white-space optional char.
                    if c1 == LETTER && !is_newline(b0) {
                        return self.run_end(s, j + l1, LETTER);
                    }
                    // ` ?[^\s\p{L}\p{N}]+[\r\n]*` with the space.
                    if c1 == OTHER && b0 == b' ' {
                        return Self::newlines_end(s, self.run_end(s, j + l1, OTHER));
                    }
                }
                // The white-space run [i, k), its last char at `last`.
                let mut k = i;
                let mut last = i;
                let mut nl_end = 0;
                while k < n {
                    let b = s[k];
                    let (c, l) = if b < 0x80 {
                        (ASCII[b as usize], 1)
                    } else {
                        self.class(s, k)
                    };
                    if c != SPACE {
                        break;
                    }
                    if is_newline(b) {
                        nl_end = k + 1;
                    }
                    last = k;
                    k += l;
                }
                if nl_end != 0 {
                    // \s*[\r\n]+ : \s* backs off to the run's last newline.
                    nl_end
                } else if k == n || last == i {
                    // \s+(?!\S) at the end of the text, or \s+ for one char.
                    k
                } else {
                    // \s+(?!\S) : all but the last char of the run.
                    last
                }
            }
        }
    }

    /// GPT-2's pattern past its contractions.
    #[inline(always)]
    fn next_gpt2(&self, s: &[u8], i: usize) -> usize {
        let n = s.len();
        let b0 = s[i];
        let (c0, l0) = self.class(s, i);
        let j = i + l0;
        if c0 != SPACE {
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` without the space.
            return self.run_end(s, j, c0);
        }
        if b0 == b' ' && j < n {
            let (c1, l1) = self.class(s, j);
            if c1 != SPACE {
                // The same with the space.
                return self.run_end(s, j + l1, c1);
            }
        }
        let mut k = i;
        let mut last = i;
        while k < n {
            let (c, l) = self.class(s, k);
            if c != SPACE {
                break;
            }
            last = k;
            k += l;
        }
        if k == n || last == i { k } else { last }
    }

    /// The smallest byte offset `p` with `from <= p < text.len()` at which
    /// the text can be cut into two texts that pre-tokenize independently:
    /// `pieces(text) == pieces(text[..p]) ++ (pieces(text[p..]) shifted by p)`.
    ///
    /// Llama-3 / Qwen2: `p` follows a `\r` or `\n` and the char at `p` is not
    /// white space. Proof. (a) The match containing the newline at `p - 1`
    /// ends at `p`: the alternatives that can contain `\r`/`\n` are
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*` (whose tail ends at the last newline) and
    /// the three white-space ones (which cannot take the non-space char at
    /// `p`); `[^\r\n\p{L}\p{N}]?\p{L}+` excludes newlines. (b) No match before
    /// `p` looks at `p`: a match's decisions read its own chars plus one
    /// (greedy runs stop on the first foreign char, `(?!\S)` reads one char),
    /// except that `\s*[\r\n]+` and `\s+(?!\S)` scan a whole white-space run
    /// and back off. A run that reaches `p - 1` holds the newline there, so
    /// `\s*[\r\n]+` matches through it: that is the match containing `p - 1`,
    /// and at its start every earlier alternative fails on chars before `p`
    /// (the second char of a run of two or more is white space), while
    /// `\s*[\r\n]+` itself ends at the run's last newline, `p - 1`, whether
    /// `p` holds a non-space char or the end of the text. The same holds for
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*` whose newline tail stops at `p` in both
    /// cases. (c) There is no look-behind, so matching from `p` depends only
    /// on `text[p..]`.
    ///
    /// GPT-2: the newline run is a single `\n` between two non-space chars.
    /// Here the white-space alternatives alone can hold a newline, and
    /// `\s+(?!\S)` gives back the last char of a run unless the run ends the
    /// text; so a run of two or more white-space chars would split
    /// differently once cut. A run of exactly one char `\n` is matched whole
    /// either way (by `\s+` when a non-space char follows, by `\s+(?!\S)` at
    /// the end of the text), and the preceding non-space char's match cannot
    /// take a white-space char nor look past it.
    pub fn split_point(&self, text: &str, from: usize) -> Option<usize> {
        let s = text.as_bytes();
        let n = s.len();
        let mut k = from.saturating_sub(1);
        while k + 1 < n {
            let nl = match self.pattern {
                Pattern::Llama3 { .. } => s[k..n - 1].iter().position(|&b| is_newline(b)),
                Pattern::Gpt2 => s[k..n - 1].iter().position(|&b| b == b'\n'),
            };
            let q = k + nl?; // the newline
            let p = q + 1;
            k = p;
            if p < from || self.class(s, p).0 == SPACE {
                continue;
            }
            if self.pattern == Pattern::Gpt2 {
                if q == 0 {
                    continue;
                }
                let mut c = q - 1;
                while c > 0 && (s[c] & 0xc0) == 0x80 {
                    c -= 1;
                }
                if self.class(s, c).0 == SPACE {
                    continue;
                }
            }
            return Some(p);
        }
        None
    }
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)` after the apostrophe at `p - 1`: the
/// length in bytes past the apostrophe. Oniguruma folds case with Unicode
/// rules, so U+017F LATIN SMALL LETTER LONG S matches `s` as well (a test
/// checks every code point against Oniguruma).
#[inline]
fn contraction_ci(s: &[u8], p: usize) -> Option<usize> {
    let b1 = *s.get(p)?;
    match b1 | 0x20 {
        b's' | b't' | b'm' | b'd' if b1.is_ascii_alphabetic() => Some(1),
        b'r' | b'v' if b1.is_ascii_alphabetic() => match s.get(p + 1) {
            Some(&b2) if b2 | 0x20 == b'e' && b2.is_ascii_alphabetic() => Some(2),
            _ => None,
        },
        b'l' if b1.is_ascii_alphabetic() => match s.get(p + 1) {
            Some(&b2) if b2 | 0x20 == b'l' && b2.is_ascii_alphabetic() => Some(2),
            _ => None,
        },
        _ if b1 == 0xc5 && s.get(p + 1) == Some(&0xbf) => Some(2),
        _ => None,
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` after the apostrophe at `p - 1`.
#[inline]
fn contraction_cs(s: &[u8], p: usize) -> Option<usize> {
    match *s.get(p)? {
        b's' | b't' | b'm' | b'd' => Some(1),
        b'r' | b'v' if s.get(p + 1) == Some(&b'e') => Some(2),
        b'l' if s.get(p + 1) == Some(&b'l') => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: Pattern, t: &str) -> Vec<&str> {
        PreTokenizer::new(p)
            .pieces(t)
            .into_iter()
            .map(|(a, b)| &t[a..b])
            .collect()
    }

    const L3: Pattern = Pattern::Llama3 { max_digits: 3 };

    #[test]
    fn llama3_examples() {
        assert_eq!(split(L3, "Hello world"), ["Hello", " world"]);
        assert_eq!(
            split(L3, "I'LL go 12345"),
            ["I", "'LL", " go", " ", "123", "45"]
        );
        assert_eq!(
            split(L3, "a  b\n\n  c "),
            ["a", " ", " b", "\n\n", " ", " c", " "]
        );
        assert_eq!(split(L3, "x...\r\n\ty"), ["x", "...\r\n", "\ty"]);
        assert_eq!(split(L3, "  \n  "), ["  \n", "  "]);
        assert_eq!(split(L3, "(( hi"), ["((", " hi"]);
        assert_eq!(split(L3, " !?"), [" !?"]);
    }

    #[test]
    fn gpt2_examples() {
        assert_eq!(
            split(Pattern::Gpt2, "Hello  world's 12345"),
            ["Hello", " ", " world", "'s", " 12345"]
        );
        assert_eq!(split(Pattern::Gpt2, "a\n\nb "), ["a", "\n", "\n", "b", " "]);
        assert_eq!(split(Pattern::Gpt2, "I'LL"), ["I", "'", "LL"]);
    }

    #[test]
    fn split_points() {
        let pt = PreTokenizer::new(L3);
        let t = "ab\n\ncd \n ef\rg";
        assert_eq!(pt.split_point(t, 0), Some(4));
        assert_eq!(pt.split_point(t, 5), Some(12));
        assert_eq!(pt.split_point(t, 13), None);
        let pt = PreTokenizer::new(Pattern::Gpt2);
        assert_eq!(pt.split_point(t, 0), None);
        assert_eq!(pt.split_point("é\nx", 0), Some(3));
    }
}
