//! Sizing a prompt to a length: as many haystack units as fit.
//!
//! A prompt is a skeleton (instructions, needles or gold record, question) plus the
//! first `n` units of a haystack. Prompt tokens (BOS included) + the generation budget
//! must be ≤ L and ≥ 0.9 L. Re-encoding a 128K-token prompt for every probe of a
//! binary search would cost ~17 encodes; instead each unit is encoded once, with the
//! text that joins it to its neighbour, so the estimate `skeleton + Σ unit tokens`
//! grows with `n` and its largest fitting `n` is read off in one pass (what the binary
//! search would find). The units are cut where the tokenizer's pre-tokens are cut, so
//! the estimate is exact or off by a token or two; the final prompt is then encoded
//! whole and units are trimmed one at a time until the exact count fits.

use prolong_tokenizer::{TokenizeError, Tokenizer};

/// A task's prompt, as a function of how many haystack units it holds.
pub trait Haystack {
    /// Estimated tokens of unit `i` (with its joining text). Called for `i` = 0, 1, 2, …
    /// in order, so units can be made on demand.
    fn unit_tokens(&mut self, tok: &Tokenizer, i: usize) -> Result<usize, FitError>;
    /// The whole prompt (no BOS) with the first `n` units.
    fn render(&self, n: usize) -> String;
}

/// A prompt that fits.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub prompt: String,
    /// Haystack units in the prompt.
    pub units: usize,
    /// Tokens of the prompt, BOS included.
    pub prompt_tokens: usize,
}

/// Why no prompt fits a length, or a unit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(
        "length {length} is shorter than the prompt skeleton ({skeleton} tokens) + the generation budget ({budget})"
    )]
    TooShort {
        length: usize,
        skeleton: usize,
        budget: usize,
    },
    #[error(
        "length {length}: the longest prompt that fits has {prompt_tokens} tokens, which with the budget ({budget}) fills less than 90%"
    )]
    Underfilled {
        length: usize,
        prompt_tokens: usize,
        budget: usize,
    },
    #[error("niah_multivalue needs a prose haystack (a plain-text file such as the KJV)")]
    NoProse,
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Exhausted(#[from] super::values::Exhausted),
    #[error(
        "HELMET has no JSON KV size for length {length} (it has 4K, 8K, 16K, 32K, 64K and 128K); use --protocol fill"
    )]
    NoHelmetSize { length: usize },
    #[error(transparent)]
    Truncate(#[from] super::helmet::TruncateError),
}

/// Tokens of `prompt` as the model reads it: BOS, then the text.
pub fn prompt_tokens(tok: &Tokenizer, prompt: &str) -> Result<usize, TokenizeError> {
    Ok(1 + tok.encode(prompt)?.len())
}

/// Whether `tokens` (prompt + budget) fills at least 90% of `length`.
pub fn fills(tokens: usize, length: usize) -> bool {
    10 * tokens >= 9 * length
}

/// The prompt with the most units whose tokens + `budget` ≤ `length` (see the
/// module docs); an error when even the skeleton does not fit or the result fills
/// less than 90% of `length`.
pub fn fit(
    tok: &Tokenizer,
    haystack: &mut impl Haystack,
    length: usize,
    budget: usize,
) -> Result<Fitted, FitError> {
    let skeleton = prompt_tokens(tok, &haystack.render(0))?;
    let too_short = FitError::TooShort {
        length,
        skeleton,
        budget,
    };
    let Some(target) = length.checked_sub(budget).filter(|&t| t >= skeleton) else {
        return Err(too_short);
    };
    let mut estimate = skeleton;
    let mut n = 0;
    loop {
        let next = haystack.unit_tokens(tok, n)?;
        if estimate + next > target {
            break;
        }
        estimate += next;
        n += 1;
    }
    let fitted = |n: usize| -> Result<Fitted, FitError> {
        let prompt = haystack.render(n);
        let prompt_tokens = prompt_tokens(tok, &prompt)?;
        Ok(Fitted {
            prompt,
            units: n,
            prompt_tokens,
        })
    };
    let accept = |f: Fitted| -> Result<Fitted, FitError> {
        if !fills(f.prompt_tokens + budget, length) {
            return Err(FitError::Underfilled {
                length,
                prompt_tokens: f.prompt_tokens,
                budget,
            });
        }
        Ok(f)
    };
    for _ in 0..MAX_TRIMS {
        let f = fitted(n)?;
        if f.prompt_tokens <= target {
            return accept(f);
        }
        if n == 0 {
            return Err(too_short);
        }
        n -= 1;
    }
    // The estimate is far off (a tokenizer whose units do not tokenize alone as they
    // do in the text, such as a SentencePiece one that prefixes each encoded text with
    // "▁"): the largest fitting count by bisection, each probe an exact count.
    let (mut lo, mut hi) = (0, n);
    let mut best = None;
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        let f = fitted(mid)?;
        if f.prompt_tokens <= target {
            lo = mid + 1;
            best = Some(f);
        } else if mid == 0 {
            break;
        } else {
            hi = mid - 1;
        }
    }
    accept(best.ok_or(too_short)?)
}

/// Units trimmed one at a time from the estimate before bisecting (the byte-level
/// fast path's estimate is exact or off by a token or two).
const MAX_TRIMS: usize = 8;

/// `units` with each of `inserts` (a nominal depth in 0..=1, a text) placed before
/// unit `round(depth × units.len())` — after the last one for depth 1; inserts that
/// land on one place keep their order.
pub fn interleave<'a>(units: &'a [String], inserts: &'a [(f64, String)]) -> Vec<&'a str> {
    let n = units.len();
    let mut placed: Vec<(usize, &str)> = inserts
        .iter()
        .map(|(depth, text)| {
            (
                (depth.clamp(0.0, 1.0) * n as f64).round() as usize,
                text.as_str(),
            )
        })
        .collect();
    placed.sort_by_key(|&(at, _)| at);
    let mut out = Vec::with_capacity(n + inserts.len());
    let mut next = placed.into_iter().peekable();
    for (i, unit) in units.iter().enumerate() {
        while let Some((_, text)) = next.next_if(|&(at, _)| at == i) {
            out.push(text);
        }
        out.push(unit.as_str());
    }
    out.extend(next.map(|(_, text)| text));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_places_inserts_by_depth() {
        let units: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let ins = |d: &[f64]| -> Vec<(f64, String)> {
            d.iter()
                .enumerate()
                .map(|(i, &d)| (d, format!("N{i}")))
                .collect()
        };
        assert_eq!(
            interleave(&units, &ins(&[0.0, 1.0, 0.5])),
            ["N0", "a", "b", "N2", "c", "d", "N1"]
        );
        assert_eq!(
            interleave(&units, &ins(&[0.6, 0.5])),
            ["a", "b", "N0", "N1", "c", "d"]
        );
        assert_eq!(interleave(&[], &ins(&[0.3, 0.0])), ["N0", "N1"]);
    }

    #[test]
    fn fills_is_ninety_percent() {
        assert!(fills(922, 1024) && !fills(921, 1024));
        assert!(fills(9, 10) && !fills(8, 10));
    }
}
