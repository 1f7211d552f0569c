//! The multi-value haystack: sentences of a public-domain text (the KJV in the
//! project's fixtures), read from a plain-text file.
//!
//! Lines are joined into running text after two kinds of apparatus are dropped:
//! heading lines (no sentence punctuation, ending in a number: "Genesis 1",
//! "Chapter 12") and a leading verse or paragraph number ("  3 And God said ...").
//! The text is then cut after `.`, `?` or `!` (and any closing quotes or brackets)
//! that a space follows. A sentence longer than [`MAX_UNIT_BYTES`] (the KJV's run on
//! over several verses) is further cut after `;`, `:` or `,` into pieces of at most
//! that size where it can be: the haystack grows a unit at a time, and a unit that
//! does not fit must not leave more than 10% of a short length (1K) empty. Pieces are
//! joined back with the same single space, so the text is unchanged.

use std::path::Path;
use std::sync::OnceLock;

use prolong_tokenizer::{TokenizeError, Tokenizer};

/// Longest sentence kept whole (about 50 Llama-3 tokens of English).
pub const MAX_UNIT_BYTES: usize = 240;

/// A text file that yields no sentences, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProseError {
    #[error("cannot read haystack {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("haystack {path}: no sentences (expected plain prose text)")]
    Empty { path: String },
}

/// Sentences, and their token counts once asked for (shared by all instances
/// and threads, so each sentence is encoded at most once). A count is kept with
/// the tokenizer it was counted with ([`Tokenizer::instance`]): a prose shared by
/// runs with different tokenizers (a static in one process) counts afresh for
/// any other than the first.
pub struct Prose {
    sentences: Vec<String>,
    tokens: Vec<OnceLock<(u64, usize)>>,
}

impl Prose {
    /// Reads the sentences of a plain-text file.
    pub fn from_file(path: &Path) -> Result<Prose, ProseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProseError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Prose::from_text(&text, &path.display().to_string())
    }

    /// The sentences of `text` (see the module docs); `name` says where it is from,
    /// for the error when it holds none.
    pub fn from_text(text: &str, name: &str) -> Result<Prose, ProseError> {
        let mut running = String::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || is_heading(line) {
                continue;
            }
            if !running.is_empty() {
                running.push(' ');
            }
            running.push_str(without_leading_number(line));
        }
        let sentences = split_sentences(&running);
        if sentences.is_empty() {
            return Err(ProseError::Empty {
                path: name.to_owned(),
            });
        }
        let tokens = sentences.iter().map(|_| OnceLock::new()).collect();
        Ok(Prose { sentences, tokens })
    }

    /// Sentences (at least one).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    /// Sentence `i`, counting on from the end back to the start.
    pub fn sentence(&self, i: usize) -> &str {
        &self.sentences[i % self.sentences.len()]
    }

    /// Tokens of sentence `i` (wrapping as [`Prose::sentence`]) after the space that
    /// joins it to the one before.
    pub fn tokens(&self, tok: &Tokenizer, i: usize) -> Result<usize, TokenizeError> {
        let i = i % self.sentences.len();
        if let Some(&(owner, n)) = self.tokens[i].get()
            && owner == tok.instance()
        {
            return Ok(n);
        }
        let n = tok.encode(&format!(" {}", self.sentences[i]))?.len();
        self.tokens[i].get_or_init(|| (tok.instance(), n));
        Ok(n)
    }
}

/// "Genesis 1", "Chapter 12": no sentence punctuation, last word a number.
fn is_heading(line: &str) -> bool {
    let ends_in_number = line
        .rsplit(' ')
        .next()
        .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
    ends_in_number && !line.contains(['.', ',', ';', ':', '?', '!'])
}

/// The line without a leading number and the space after it.
fn without_leading_number(line: &str) -> &str {
    match line.split_once(' ') {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            rest.trim_start()
        }
        _ => line,
    }
}

/// Cuts after sentence punctuation (and closing quotes or brackets) that a space follows.
fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        while let Some(&(_, q)) = chars.peek() {
            if matches!(q, '"' | '\'' | ')' | ']' | '’' | '”' | '.' | '?' | '!') {
                chars.next();
            } else {
                break;
            }
        }
        if let Some(&(at, ' ')) = chars.peek() {
            push_pieces(&mut out, &text[start..at]);
            start = at;
        }
    }
    push_pieces(&mut out, &text[start..]);
    out
}

/// `sentence`, cut after clause punctuation into pieces of at most [`MAX_UNIT_BYTES`]
/// where it can be.
fn push_pieces(out: &mut Vec<String>, sentence: &str) {
    let sentence = sentence.trim();
    let mut start = 0;
    let mut last_cut = None;
    for (at, _) in sentence.match_indices([';', ':', ',']) {
        let cut = at + 1;
        if !sentence[cut..].starts_with(' ') {
            continue;
        }
        if cut - start > MAX_UNIT_BYTES
            && let Some(prev) = last_cut.filter(|&p| p > start)
        {
            push_trimmed(out, &sentence[start..prev]);
            start = prev;
        }
        last_cut = Some(cut);
    }
    if sentence.len() - start > MAX_UNIT_BYTES
        && let Some(prev) = last_cut.filter(|&p| p > start)
    {
        push_trimmed(out, &sentence[start..prev]);
        start = prev;
    }
    push_trimmed(out, &sentence[start..]);
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if !s.is_empty() {
        out.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_headings_and_verse_numbers_and_splits_sentences() {
        let text = "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n  \
                    2 And it was so. And he said, \"Go!\" Then he went (quickly.) Done\n\n\
                    1 Samuel 3\n  1 The 12 tribes.\n";
        let p = Prose::from_text(text, "test").unwrap();
        let got: Vec<&str> = (0..p.len()).map(|i| p.sentence(i)).collect();
        assert_eq!(
            got,
            [
                "In the beginning God created the heaven and the earth.",
                "And it was so.",
                "And he said, \"Go!\"",
                "Then he went (quickly.)",
                "Done The 12 tribes.",
            ]
        );
        assert_eq!(p.sentence(5), got[0], "wraps around");
        // A long sentence is cut at clause punctuation; joined back it is unchanged.
        let clause = "and the waters were gathered together unto one place";
        let long = format!("{clause}; {clause}: {clause}, {clause}; {clause}, {clause}.");
        let p = Prose::from_text(&long, "long").unwrap();
        let pieces: Vec<&str> = (0..p.len()).map(|i| p.sentence(i)).collect();
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(
            pieces.iter().all(|s| s.len() <= MAX_UNIT_BYTES),
            "{pieces:?}"
        );
        assert_eq!(pieces.join(" "), long);
        assert!(matches!(
            Prose::from_text("Psalms 1\n\n", "x"),
            Err(ProseError::Empty { .. })
        ));
    }
}
