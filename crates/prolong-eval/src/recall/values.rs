//! The random keys and values of needles and records: 7-digit numbers,
//! "{adjective}-{noun}" word keys and UUID v4 strings, each fresh within a sample.

use std::collections::HashSet;

use prolong_train::data::rng::SplitMix64;

/// Common English adjectives and nouns, one a line (written for this project).
const ADJECTIVES: &str = include_str!("words/adjectives.txt");
const NOUNS: &str = include_str!("words/nouns.txt");

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
    adjectives: Vec<&'static str>,
    nouns: Vec<&'static str>,
}

impl Values {
    pub fn new(rng: SplitMix64) -> Values {
        let words = |list: &'static str| list.lines().filter(|w| !w.is_empty()).collect();
        Values {
            rng,
            used: HashSet::new(),
            adjectives: words(ADJECTIVES),
            nouns: words(NOUNS),
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
                let a = self.adjectives[self.rng.below(self.adjectives.len() as u64) as usize];
                let n = self.nouns[self.rng.below(self.nouns.len() as u64) as usize];
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
