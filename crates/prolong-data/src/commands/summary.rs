//! Pieces of the text summaries the task commands (chat, tokenize, filter,
//! sample) print after a run, so their reports read alike.

use std::path::Path;

use prolong_data::task::LengthHistogram;
use prolong_data::tokenize::stage::SkipCountsRecord;

/// Prints `value` as pretty JSON: what `--json` prints instead of the text.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `note` after a task's header line when the task had been completed before
/// and was not redone, else nothing.
pub fn skipped_note(skipped: bool, note: &'static str) -> &'static str {
    if skipped { note } else { "" }
}

/// The skip reasons with their counts and the first five examples, the
/// label padded to `width` so it lines up with the lines around it.
pub fn print_skipped(skipped: &SkipCountsRecord, width: usize) {
    for (reason, n) in &skipped.by_reason {
        println!("{:width$}{n} {reason}", "skipped");
    }
    for example in skipped.examples.iter().take(5) {
        println!("  e.g. {example}");
    }
}

/// One line per length bucket: `{label} MIN..MAX N {unit} T tokens`.
pub fn print_length_histogram(label: &str, histogram: &LengthHistogram, unit: &str) {
    for b in &histogram.buckets {
        println!(
            "{label} {:>9}..{:<9} {:>8} {unit} {:>12} tokens",
            b.min, b.max, b.documents, b.tokens
        );
    }
}

/// Whether this task merged the run's `merged_file` or left that to the last
/// task to finish.
pub fn print_merge_state(merged: bool, merged_file: &Path) {
    if merged {
        println!("merged     {}", merged_file.display());
    } else {
        println!("waiting    for the other tasks before merging");
    }
}
