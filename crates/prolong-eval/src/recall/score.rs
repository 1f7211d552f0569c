//! HELMET's scorers for the Recall tasks.

use super::task::Task;

/// The score of `prediction` (the decoded generation) against `answers`, in 0..=1.
pub fn score(task: Task, prediction: &str, answers: &[String]) -> f64 {
    match task {
        Task::JsonKv => answers
            .iter()
            .map(|a| json_kv_match(prediction, a))
            .fold(0.0, f64::max),
        _ => ruler_recall(prediction, answers),
    }
}

/// RULER's string match: the share of answers found in the prediction, case-insensitively.
pub fn ruler_recall(prediction: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let prediction = prediction.to_lowercase();
    let found = answers
        .iter()
        .filter(|a| prediction.contains(&a.to_lowercase()))
        .count();
    found as f64 / answers.len() as f64
}

/// JSON KV's answer prefix, the prompt's last line.
pub const JSON_KV_PREFIX: &str = "Corresponding value:";

/// JSON KV as HELMET scores a completion: it puts the answer prefix back before the
/// generation, then takes the better of `substring_exact_match` on that text and on
/// its parsed answer (`parse_output(text, "corresponding value:")`: the rest of the
/// line after the first prefix, in any case, stripped, one more leading prefix
/// removed). 1 when the normalised gold is a substring, else 0.
pub fn json_kv_match(prediction: &str, gold: &str) -> f64 {
    let gold = normalize(gold);
    let full = format!("{JSON_KV_PREFIX}{prediction}");
    let parsed = after_prefix(&full, "corresponding value:")
        .map(|rest| py_strip(strip_prefix_ci(py_strip(rest), "corresponding value:")));
    let hit = std::iter::once(full.as_str())
        .chain(parsed)
        .any(|c| normalize(c).contains(&gold));
    if hit { 1.0 } else { 0.0 }
}

/// The rest of the line after the first `prefix` (ASCII, matched in any case).
fn after_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let at = text.to_ascii_lowercase().find(prefix)?;
    let rest = &text[at + prefix.len()..];
    Some(rest.split('\n').next().unwrap_or_default())
}

/// `text` without a leading `prefix` (ASCII, in any case).
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> &'a str {
    match text.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &text[prefix.len()..],
        _ => text,
    }
}

/// Python's `str.isspace()`: Unicode White_Space and the separators U+001C–U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// SQuAD-style normalisation: lowercase, ASCII punctuation removed, the words a / an /
/// the replaced by a space, whitespace collapsed to single spaces.
pub fn normalize(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    // Words are runs of alphanumerics and `_` (a regex's \w); `_` is punctuation and
    // already gone.
    let mut out = String::with_capacity(lower.len());
    let mut word = String::new();
    for c in lower.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        out.push_str(if matches!(word.as_str(), "a" | "an" | "the") {
            " "
        } else {
            &word
        });
        word.clear();
        out.push(c);
    }
    out.split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_prefix_takes_the_rest_of_its_line() {
        assert_eq!(
            after_prefix("x\nCORRESPONDING VALUE:  abc \nd", "corresponding value:"),
            Some("  abc ")
        );
        assert_eq!(
            strip_prefix_ci("Corresponding Value: x", "corresponding value:"),
            " x"
        );
        assert_eq!(py_strip("\u{1f} a\u{a0}"), "a");
        assert_eq!(after_prefix("no prefix", "corresponding value:"), None);
    }
}
