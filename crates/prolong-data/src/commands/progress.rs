//! Progress bars shared by the commands (hidden when stderr is not a terminal).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use prolong_data::task::OnProgress;

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub fn bytes_bar(total_bytes: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:12} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The total size of `files` in bytes (an unreadable file counts 0: reading
/// it reports the error), the length of a [`bytes_bar`].
pub fn total_bytes<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> u64 {
    files
        .into_iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Runs `f` with a progress callback `(done, total)` that moves a bar named
/// `what`, for stages whose total is known only once they run; the bar is
/// cleared after, whether `f` failed or not.
pub fn following<T>(what: &str, f: impl FnOnce(&mut OnProgress<'_>) -> T) -> T {
    let bar = bar(0, what);
    let result = f(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    result
}
