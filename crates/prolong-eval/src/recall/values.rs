//! The random keys and values of needles and records: 7-digit numbers,
//! "{adjective}-{noun}" word keys and UUID v4 strings, each fresh within a sample.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use prolong_train::data::rng::SplitMix64;

/// Common English adjectives and nouns, one a line (written for this project).
const ADJECTIVES: &str = include_str!("words/adjectives.txt");
const NOUNS: &str = include_str!("words/nouns.txt");

/// The adjectives and nouns of word keys ("{adjective}-{noun}").
#[derive(Debug)]
pub struct WordLists {
    adjectives: Vec<String>,
    nouns: Vec<String>,
}

/// Word lists that cannot be read or are empty.
#[derive(Debug, thiserror::Error)]
pub enum WordListError {
    #[error("cannot read word list {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("word list {path}: no words")]
    Empty { path: String },
}

/// A word list's largest accepted size (wonderwords' noun list is 0.05 MB).
const MAX_WORD_LIST_BYTES: u64 = 16 << 20;

impl WordLists {
    /// This project's lists (308 adjectives × 262 nouns).
    pub fn builtin() -> Arc<WordLists> {
        static LISTS: OnceLock<Arc<WordLists>> = OnceLock::new();
        LISTS
            .get_or_init(|| {
                Arc::new(WordLists {
                    adjectives: words(ADJECTIVES),
                    nouns: words(NOUNS),
                })
            })
            .clone()
    }

    /// RULER's lists: `adjectivelist.txt` and `nounlist.txt` of the wonderwords
    /// package in `dir` (one word a line, as RULER reads them: trimmed, empty lines
    /// dropped, a repeated word kept once).
    pub fn from_dir(dir: &Path) -> Result<Arc<WordLists>, WordListError> {
        let read = |name: &str| -> Result<Vec<String>, WordListError> {
            let path = dir.join(name);
            let io = |source| WordListError::Io {
                path: path.display().to_string(),
                source,
            };
            let len = std::fs::metadata(&path).map_err(io)?.len();
            if len > MAX_WORD_LIST_BYTES {
                return Err(io(std::io::Error::other(format!(
                    "{len} bytes, more than the {MAX_WORD_LIST_BYTES} a word list may have"
                ))));
            }
            let list = words(&std::fs::read_to_string(&path).map_err(io)?);
            if list.is_empty() {
                return Err(WordListError::Empty {
                    path: path.display().to_string(),
                });
            }
            Ok(list)
        };
        Ok(Arc::new(WordLists {
            adjectives: read("adjectivelist.txt")?,
            nouns: read("nounlist.txt")?,
        }))
    }

    /// (adjectives, nouns).
    pub fn sizes(&self) -> (usize, usize) {
        (self.adjectives.len(), self.nouns.len())
    }
}

/// The trimmed non-empty lines of `list`, each once, in order.
fn words(list: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    list.lines()
        .map(str::trim)
        .filter(|w| !w.is_empty() && seen.insert(*w))
        .map(str::to_owned)
        .collect()
}

/// Consecutive draws that may repeat an earlier string before the space counts as
/// used up (with 80K word keys, a sample of 128K tokens uses under 10%).
const MAX_REDRAWS: usize = 1000;

/// What a key or value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// "{adjective}-{noun}".
    Word,
    /// 1000000..=9999999.
    Number,
    /// 128 random bits as a lowercase UUID v4 (8-4-4-4-12).
    Uuid,
}

/// Every string drawn so far was new: the space of `kind` is nearly used up.
#[derive(Debug, thiserror::Error)]
#[error(
    "no fresh {kind:?} left after {MAX_REDRAWS} draws (the sample is too long for the key space)"
)]
pub struct Exhausted {
    pub kind: ValueKind,
}

/// Draws keys and values for one sample; none is ever drawn twice.
pub struct Values {
    rng: SplitMix64,
    used: HashSet<String>,
    words: Arc<WordLists>,
}

impl Values {
    /// Word keys from this project's lists.
    pub fn new(rng: SplitMix64) -> Values {
        Values::with_words(rng, WordLists::builtin())
    }

    /// Word keys from `words`.
    pub fn with_words(rng: SplitMix64, words: Arc<WordLists>) -> Values {
        Values {
            rng,
            used: HashSet::new(),
            words,
        }
    }

    /// The generator's random numbers (for depths and positions).
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// A `kind` string not drawn before from this generator.
    pub fn fresh(&mut self, kind: ValueKind) -> Result<String, Exhausted> {
        for _ in 0..MAX_REDRAWS {
            let s = self.draw(kind);
            if self.used.insert(s.clone()) {
                return Ok(s);
            }
        }
        Err(Exhausted { kind })
    }

    fn draw(&mut self, kind: ValueKind) -> String {
        match kind {
            ValueKind::Word => {
                let (adjectives, nouns) = (&self.words.adjectives, &self.words.nouns);
                let a = &adjectives[self.rng.below(adjectives.len() as u64) as usize];
                let n = &nouns[self.rng.below(nouns.len() as u64) as usize];
                format!("{a}-{n}")
            }
            ValueKind::Number => (1_000_000 + self.rng.below(9_000_000)).to_string(),
            ValueKind::Uuid => uuid_v4(self.rng.next_u64(), self.rng.next_u64()),
        }
    }
}

/// The UUID v4 of 128 random bits (`hi` the first 8 bytes): version nibble 4,
/// variant bits 10, lowercase 8-4-4-4-12.
pub fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        for (hi, lo) in [(0, 0), (u64::MAX, u64::MAX), (0x0123_4567_89ab_cdef, 7)] {
            let u = uuid_v4(hi, lo);
            let parts: Vec<&str> = u.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(
                u.chars()
                    .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'))
            );
            assert!(parts[2].starts_with('4'), "{u}");
            assert!(
                matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{u}"
            );
        }
        assert_eq!(
            uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
    }

    #[test]
    fn words_are_lowercase_and_unique() {
        for list in [ADJECTIVES, NOUNS] {
            let words: Vec<&str> = list.lines().collect();
            assert!(words.len() >= 200);
            assert!(
                words
                    .iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            );
            assert_eq!(words.iter().collect::<HashSet<_>>().len(), words.len());
        }
    }

    #[test]
    fn fresh_never_repeats_and_has_the_kind_shape() {
        let mut v = Values::new(SplitMix64::new(3));
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let n = v.fresh(ValueKind::Number).unwrap();
            assert_eq!(n.len(), 7);
            assert!((1_000_000..=9_999_999).contains(&n.parse::<u32>().unwrap()));
            let w = v.fresh(ValueKind::Word).unwrap();
            let (a, b) = w.split_once('-').unwrap();
            assert!(ADJECTIVES.lines().any(|x| x == a) && NOUNS.lines().any(|x| x == b));
            assert!(seen.insert(n) && seen.insert(w));
        }
    }
}
